"""emovid: emotion recognition in videos from the face alone."""
__version__ = "0.1.0"
