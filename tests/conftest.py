import os

# Nothing may reach a model hub: fail at once instead of retrying a network that is not there.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
