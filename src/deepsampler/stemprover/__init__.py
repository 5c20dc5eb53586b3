"""StemProver: phase-aware artifact reduction for separated stems.

Data flow (one way): ``features`` (phase-aware STFT) and ``detectors`` (which artifacts, where)
-> ``autoencoder`` (latent) -> ``denoiser`` (base diffusion model) steered by ``control`` (zero
convs) and ``adapters`` (LoRA per artifact) -> ``diffusion`` (DDIM sampling) -> ``segments``
(adaptive segmentation, overlap-add) -> ``enhancer`` (files and arrays in, refined stems out).
``pairs`` and ``degradations`` make training pairs; ``train`` runs the training stages.
"""
