"""The trainer (JAX, flax, optax): ``python -m greenpc.train -problem NAME -train_output F.gpc``."""
