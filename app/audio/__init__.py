"""Audio for calls: μ-law codec and resampling, VAD, speech to text, text to speech.

Submodules load their models lazily; importing this package is cheap.
"""
