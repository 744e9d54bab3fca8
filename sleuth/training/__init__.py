"""Fine-tune a vision-language model on sleuth's own investigations (``sleuth train-vlm``).

:mod:`~sleuth.training.examples` reads the records ``sleuth traces export`` writes into
training examples (a request and the answer that followed it);
:mod:`~sleuth.training.rendering` renders them with the model's own processor and chat
template exactly as the serving engine renders the request; :mod:`~sleuth.training.vlm`
plans and runs supervised fine-tuning (LoRA by default) with TRL and PEFT (the ``train``
extra). Nothing heavy is imported until a function needs it.
"""
