"""Label sets shared by the models.

``DFER_LABELS`` is the 7-class order of DFEW, FERV39k and AFEW (index = class id), which every DFER model in
edgefer predicts in. ``SPOTTING_CLASSES`` are FESNet's frame-wise classes (MEGC spotting protocol).
"""

DFER_LABELS: tuple[str, ...] = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
SPOTTING_CLASSES: tuple[str, ...] = ("neutral", "macro", "micro")
