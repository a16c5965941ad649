"""Hypertrain worker SDK: hyper-train your own model with the Swift parameter server.

    from hypertrain_sdk import Trainer, Validator, run_worker, Batch
    from hypertrain_sdk.torch_model import TorchModel      # needs torch

See docs/sdk.md.
"""
from .worker import (Batch, Trainer, Validator, Worker, WorkerError, run_worker, model_spec_message,
                     EXIT_COMPLETE, EXIT_COORDINATOR_STOPPED, EXIT_ERROR, EXIT_GAVE_UP)
from .safetensors_io import read as read_safetensors, write as write_safetensors
from .launch import find_hypertrain, run_local, load_answer, write_model_spec

__version__ = "0.1.0"
__all__ = ["Batch", "Trainer", "Validator", "Worker", "WorkerError", "run_worker", "model_spec_message",
           "read_safetensors", "write_safetensors", "find_hypertrain", "run_local", "load_answer",
           "write_model_spec", "EXIT_COMPLETE", "EXIT_COORDINATOR_STOPPED", "EXIT_ERROR", "EXIT_GAVE_UP"]
