"""federation-deploy: deploy and steer a BinderHub federation from one config."""

__version__ = "0.1.0"
