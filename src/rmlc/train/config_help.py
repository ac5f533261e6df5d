"""One line of help per :class:`~rmlc.train.config.TrainConfig` key: the help of the
``rmlc train`` flags (the command line adds each key's default). A test fails on a key
without one (``tests/test_cli.py``)."""

from __future__ import annotations

__all__ = ["CONFIG_HELP"]

CONFIG_HELP: dict[str, str] = {
    # data
    "dataset": "a source: a built-in set (fashion-mosaic, fashion-mnist, cifar10, stl10, "
    "coco, nus-wide), tags for your own tables (set by --train/--test), or one registered "
    "with rmlc.train.sources.register_source",
    "source": "fashion-mosaic and fashion-mnist: the embedded subset or the full set",
    "data_root": "folder of a built-in dataset's files (cifar10, stl10, coco, nus-wide)",
    "train": "training tags table (CSV or JSONL, header image,labels) or shard folder",
    "test": "test tags table or shard folder (every row labeled)",
    "unlabeled": "tags table or shard folder of unlabeled images (--semi-supervised)",
    "image_root": "folder the tables' image paths start from (default: the training "
    "table's folder)",
    "image_size": "side images are resized to (default: their own for small-cnn, at most "
    "128; 224 for ResNets)",
    "image_cache": "folder keeping decoded, resized images between epochs and runs",
    "num_labeled": "keep this many training images labeled, the rest unlabeled",
    "classes": "class indices kept labeled and tested (single-label sets), e.g. [0, 1]",
    "max_unlabeled": "at most this many unlabeled images (chosen at random)",
    "subsample": "keep this fraction of the labeled training images (class frequencies "
    "kept), as the paper subsampled COCO and NUS-WIDE",
    "label_noise": "fraction of labeled training images whose labels are redrawn "
    "(the paper's protocol)",
    "missing_labels": "fraction of positive training labels dropped",
    "hide_tags": "fraction of the training samples' known tags hidden as unknown (partial labels)",
    "single_positive": "keep one positive tag per training sample, every other tag unknown",
    "unknown_tags": "ignore (losses and metrics use known tags only) or negative "
    "(an unknown tag read as absent)",
    "fill_unknown": "at each label refresh, fill a labeled image's unknown tags from the "
    "nearest other labeled image that knows them (partial labels)",
    "fill_unknown_confidence": "--fill-unknown: fill only where the heat-kernel confidence "
    "is at least this",
    "validation_fraction": "fraction of the labeled training images held out for "
    "validation (model selection, thresholds)",
    "bad_images": "unreadable image files: raise (an error naming them all) or skip "
    "(left out and counted)",
    "empty_labels": "training rows with an empty labels field: unlabeled (unlabeled "
    "images), skip (left out) or error (refused, naming the lines); default: unlabeled "
    "with --semi-supervised, error otherwise",
    # model
    "backbone": "small-cnn, resnet18/34/50/101 or timm:NAME",
    "pretrained": "start from pretrained weights (ImageNet; rmlc's own for small-cnn)",
    "weights": "a file of pretrained weights for the backbone",
    "small_input": "ResNets: a 3x3 first convolution without max-pooling (small images)",
    "width": "small-cnn: channels of its first stage (then 2x and 4x)",
    "norm": "small-cnn: normalisation layers, batch, group or none",
    # loss
    "loss": "rmlc (recommended), the paper's rmlc-paper, or a baseline",
    "loss_params": "YAML mapping of the loss's parameters, e.g. '{kappa: 2}'",
    "ramp_start": "RMLC: fraction of the run trained with the hinge before the ramp "
    "(default: 1 for rmlc, the ramp off; 0 for rmlc-paper; 0.5: the ramp for the second half)",
    # optimisation
    "epochs": "training epochs",
    "batch_size": "images per step (over all processes)",
    "lr": "learning rate (default: the loss's, e.g. 0.006 for rmlc)",
    "momentum": "SGD momentum",
    "nesterov": "Nesterov momentum",
    "weight_decay": "L2 weight decay (not on biases and norm parameters)",
    "schedule": "learning-rate schedule: fixed, multistep or cosine",
    "milestones": "multistep: the steps where the rate is multiplied by --gamma",
    "gamma": "multistep: the factor at each milestone",
    "warmup_steps": "steps of linear learning-rate warm-up",
    "augment": "reflect-pad, random crop and horizontal flip of training batches",
    # semi-supervised
    "semi_supervised": "propagate labels to the unlabeled images and train on them (SS-RML-CNN)",
    "warmup_epochs": "semi-supervised: epochs on labeled images before the first refresh",
    "refresh_every": "semi-supervised: epochs between label refreshes",
    "t": "heat-kernel temperature: mean, authors or a number",
    "propagation_index": "nearest-labeled-neighbour search: exact, ivf or hnsw (faiss)",
    "propagation_index_params": "YAML mapping of the index's settings, e.g. '{nprobe: 32}'",
    "unlabeled_ratio": "unlabeled images per labeled one in batches (default: as found)",
    # evaluation
    "topk": "a tag is predicted only among an image's top k scores",
    "threshold": "minimum score of a predicted tag: a number, auto or per-class (chosen "
    "on validation)",
    "select": "the epoch best.pt keeps and the test metrics measure: best (on validation) or last",
    # runtime
    "seed": "random seed (data splits, initialisation, batches)",
    "device": "auto, cpu, cuda or cuda:N",
    "amp": "mixed precision: bf16 or fp16 (GPUs)",
    "channels_last": "channels-last memory format (GPUs)",
    "compile": "torch.compile the network",
    "num_workers": "image decoding processes (default: one per core for files, none in memory)",
    "out": "run folder: checkpoints, logs, metrics; must not hold another run unless "
    "--resume or --overwrite",
    "resume": "continue the run in --out from its last.pt",
    "overwrite": "replace the run in --out: its run files are removed first (nothing else)",
    "init_checkpoint": "start from this checkpoint's network (not its optimizer)",
    "checkpoint_every_steps": "also save last.pt every this many steps",
    "dist_timeout": "seconds a process waits for the others (torchrun)",
    "tensorboard": "TensorBoard scalars in --out/tensorboard (default: when tensorboard "
    "is installed)",
    "progress": "progress bars and messages on the terminal",
    "dynamics_every": "record the ramp's statistics every this many steps (dynamics.csv)",
    "relabel": "audit the training tags while training: off, drop (set aside images with "
    "flagged tags) or predict (flagged tags take the network's label)",
    "relabel_every": "--relabel: epochs between audits",
    "relabel_patience": "--relabel: consecutive audits that must flag a tag before it is acted on",
    "relabel_cutoff": "--relabel: disagreement at which a tag is flagged (default: the ramp's "
    "cap, 1 - s)",
    "test_every_epoch": "evaluate the test split after every epoch too (learning curves in "
    "log.csv; never used to choose)",
    "curve_every": "--test-every-epoch and the training fit: only every this many epochs, the "
    "first, the last and each epoch validation selects (the others NaN); training unchanged",
}
