"""Data augmentation: random transforms of each training batch, applied on the fly by
``Sequential.fit(..., augment=...)``.

A transform is called as ``transform(X, rng)`` on a batch ``X`` (batch, features) and
returns the transformed batch (same shape and dtype); `rng` is the model's random
generator, so a seeded model augments the same way every run. `fit` applies them only
to training batches, never to validation data, evaluation or prediction.

- `GaussianNoise` works on any input.
- For flattened images (each row an image of ``image_shape`` = (height, width) or
  (height, width, channels), stored row by row): `RandomFlip`, and `RandomShift`,
  `RandomRotation` and `RandomZoom`, which are one random affine warp
  (`RandomAffine`, bilinear, zeros outside the image) with one kind of motion each.

Augmentation must keep the label true: a transform the data never shows (digits turned
upside down, a 6 flipped into a 9, noise larger than the signal) does not teach the
network anything about the task and makes it harder to fit: the network underfits.
`fastnn experiment augmentation` shows both on the digits.
"""
import numpy as np

__all__ = ["GaussianNoise", "RandomFlip", "RandomAffine", "RandomShift", "RandomRotation",
           "RandomZoom", "Compose", "get"]


class GaussianNoise:
    """X + N(0, stddev^2), independently per value."""

    def __init__(self, stddev):
        from fastnn._validation import check_real

        self.stddev = check_real(stddev, "stddev", 0.0, None)

    def __call__(self, X, rng):
        noise = rng.standard_normal(X.shape, dtype=X.dtype)
        noise *= self.stddev
        return X + noise


def _image_shape(image_shape):
    shape = tuple(int(d) for d in image_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"image_shape must be (height, width) or (height, width, channels) "
                         f"of positive sizes, got {image_shape!r}")
    return shape if len(shape) == 3 else shape + (1,)


class _ImageTransform:
    """Base of the image transforms: the batch viewed as (batch, height, width, channels)."""

    def __init__(self, image_shape):
        self.image_shape = _image_shape(image_shape)

    def _images(self, X):
        size = int(np.prod(self.image_shape))
        if X.shape[1] != size:
            raise ValueError(f"{type(self).__name__} is for images of shape {self.image_shape}"
                             f" ({size} values), but the inputs have {X.shape[1]} features")
        return X.reshape((X.shape[0],) + self.image_shape)


class RandomFlip(_ImageTransform):
    """Mirror each image left-right (``horizontal``) and/or upside down (``vertical``),
    each with probability 1/2."""

    def __init__(self, image_shape, horizontal=True, vertical=False):
        super().__init__(image_shape)
        self.horizontal, self.vertical = bool(horizontal), bool(vertical)

    def __call__(self, X, rng):
        images = self._images(X).copy()
        for axis, on in ((2, self.horizontal), (1, self.vertical)):
            if on:
                pick = rng.random(images.shape[0]) < 0.5
                images[pick] = np.flip(images[pick], axis=axis)
        return images.reshape(X.shape)


class RandomAffine(_ImageTransform):
    """Rotate by up to ``rotation`` degrees, scale by a factor in [1 - zoom, 1 + zoom] and
    shift by up to ``shift`` pixels (each drawn uniformly per image), about the centre;
    bilinear interpolation, zeros where the source falls outside the image."""

    def __init__(self, image_shape, rotation=0.0, zoom=0.0, shift=0.0):
        from fastnn._validation import check_real

        super().__init__(image_shape)
        self.rotation = check_real(rotation, "rotation", 0.0, 180.0)
        self.zoom = check_real(zoom, "zoom", 0.0, 1.0, closed="left")
        self.shift = check_real(shift, "shift", 0.0, None)

    def __call__(self, X, rng):
        images = self._images(X)
        n, h, w, _ = images.shape
        angle = np.deg2rad(rng.uniform(-self.rotation, self.rotation, n))
        scale = rng.uniform(1 - self.zoom, 1 + self.zoom, n)
        shift = rng.uniform(-self.shift, self.shift, (n, 2))
        # output pixel (r, c) reads the source at centre + A^-1 (p - centre - shift)
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        r, c = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2,
                           indexing="ij")
        r = r[None] - shift[:, 0, None, None]
        c = c[None] - shift[:, 1, None, None]
        src_r = cos[:, None, None] * r - sin[:, None, None] * c + (h - 1) / 2
        src_c = sin[:, None, None] * r + cos[:, None, None] * c + (w - 1) / 2
        return _bilinear(images, src_r, src_c).reshape(X.shape).astype(X.dtype, copy=False)


def _bilinear(images, src_r, src_c):
    """images (n, h, w, ch) sampled at (n, h, w) source coordinates; zeros outside."""
    n, h, w, ch = images.shape
    r0, c0 = np.floor(src_r).astype(np.int64), np.floor(src_c).astype(np.int64)
    fr, fc = (src_r - r0)[..., None], (src_c - c0)[..., None]
    flat = images.reshape(n, h * w, ch)
    batch = np.arange(n)[:, None, None]
    out = np.zeros(images.shape, dtype=np.float64)
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                           (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        index = np.where(inside, rr * w + cc, 0)
        out += weight * flat[batch, index] * inside[..., None]
    return out


class RandomShift(RandomAffine):
    """Shift each image by up to ``pixels`` pixels in each direction."""

    def __init__(self, image_shape, pixels=1.0):
        super().__init__(image_shape, shift=pixels)


class RandomRotation(RandomAffine):
    """Rotate each image by up to ``degrees`` either way."""

    def __init__(self, image_shape, degrees=10.0):
        super().__init__(image_shape, rotation=degrees)


class RandomZoom(RandomAffine):
    """Scale each image by a factor in [1 - ``amount``, 1 + ``amount``]."""

    def __init__(self, image_shape, amount=0.1):
        super().__init__(image_shape, zoom=amount)


class Compose:
    """Transforms applied one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"an augmentation transform must be callable as t(X, rng), "
                                f"got {t!r}")

    def __call__(self, X, rng):
        for t in self.transforms:
            X = t(X, rng)
        return X


def get(augment):
    """One callable from a transform, a list of transforms, or None."""
    if augment is None or isinstance(augment, Compose):
        return augment
    if isinstance(augment, (list, tuple)):
        return Compose(augment)
    return Compose([augment])
