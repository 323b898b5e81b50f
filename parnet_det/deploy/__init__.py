from .reparameterize import reparameterize_checkpoint, switch_to_deploy

__all__ = ['reparameterize_checkpoint', 'switch_to_deploy']
