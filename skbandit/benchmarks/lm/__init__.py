"""The language-model suite (``skbandit bench lm``): small decoder LMs on
BBC News characters, attention heads and MLP channels pruned, validation
perplexity.

- :mod:`.data`: the corpus, its fixed split and the character tokenizer;
- :mod:`.models`: :class:`DecoderLM`, Llama-style and GPT-2-style;
- :mod:`.methods`: the methods, the fluctuation baseline and OWL allocation;
- :mod:`.suite`: training, one configuration, the resumable suite, the report.
"""
