"""The investigator's workbench: ``sleuth ui``, a local web app over the case store.

:mod:`.app` builds the Starlette app and runs it; :mod:`.routes` answers pages and API
calls; :mod:`.jobs` runs analyses and follow-ups in the background with their progress;
:mod:`.views` turns a stored case into what the page shows; :mod:`.guard` keeps the app
to its user (loopback, token, Host and Origin). Templates and the plain JavaScript and CSS
ship inside the package: no build step, no CDN, works offline.
"""
