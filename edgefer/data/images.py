"""Reading one frame image from disk as the runtime's input: a BGR uint8 array, as OpenCV decodes a video frame.

The runtime prepares OpenCV BGR frames (:func:`edgefer.preprocess.prepare_frame`); a frame folder is read into the
same kind of array, so that training and inference prepare identical pixels. Grey and 4-channel images are
converted to 3-channel BGR (``cv2.IMREAD_COLOR``). Bytes are read with numpy and decoded with ``cv2.imdecode``,
which also handles non-ASCII paths. Torch-free.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .records import DatasetError


def read_image(path: str | Path, where: str = "") -> np.ndarray:
    """Decode one image file into a (H, W, 3) BGR uint8 array.

    Args:
        path: the image.
        where: the record's ``file:line`` (or folder), put first in the message.

    Raises:
        DatasetError: the file is missing, unreadable, or not a decodable image; one line naming ``where`` and
            the image's path.
    """
    import cv2

    prefix = f"{where}: " if where else ""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"{prefix}image {path} does not exist") from None
    except OSError as exc:
        raise DatasetError(f"{prefix}image {path} cannot be read: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DatasetError(f"{prefix}image {path} is not a readable image (empty, truncated or not an image file)")
    return image
