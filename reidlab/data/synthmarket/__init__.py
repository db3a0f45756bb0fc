"""SynthMarket: reidlab's procedurally generated pedestrian re-ID dataset with part masks.

No public re-ID dataset can be downloaded in every classroom, so reidlab draws its own. SynthMarket
copies the *protocol* of Market-1501 (Zheng et al., ICCV 2015; docs/methods.md, section 7): six cameras, 128 x 64
crops, disjoint train and test identities, one query per test identity and camera, a gallery with
distractors (pid 0) and junk (pid -1). Every image comes with an exact ground-truth part mask, which
the real datasets lack, so part-based ideas (SCWM's spatial cascade, docs/methods.md, section 4.4) can be checked.

Layout written at ``root``::

    root/bounding_box_train/*.jpg          training identities
    root/query/*.jpg                       one image per test identity and camera
    root/bounding_box_test/*.jpg           gallery: the other test images + distractors + junk
    root/masks/bounding_box_train/*.png    part mask per image, same stem as the .jpg
    root/masks/query/*.png
    root/masks/bounding_box_test/*.png
    root/synthmarket.json                  manifest, written last, with "complete": true

Names follow Market-1501 exactly: ``PPPP_cCsS_FFFFFF_BB.jpg`` with the person id on 4 digits,
camera ``C`` in 1..6, sequence ``S`` in 1..6, frame ``FFFFFF`` and detection box ``BB``, e.g.
``0042_c3s2_014025_01.jpg``. Distractors have pid 0 (``0000_c5s1_031402_02.jpg``) and junk pid -1
(``-1_c3s1_000401_02.jpg``). Masks are 8-bit single-channel PNGs: 0 background (occluders included),
1 head (with hair), 2 upper body (with arms), 3 lower body (with legs), 4 shoes, 5 accessory (bag
or backpack); see :data:`PART_NAMES`.

How it is made (one section of this file each):

1. *Identities -> appearance.* Colours come from a small palette (12 clothing colours, 5 hair
   colours, 4 skin tones, 6 shoe colours), so many identities share their top or their trousers.
   A share of identities are *near-twins* of another one that differ in one part only (shoes, bag
   or shirt pattern): telling them apart needs fine, part-level cues.
2. *Cameras.* Each camera has its own colour cast, brightness, contrast, background texture
   (pavement tiles, grass, striped wall, colour noise, bricks, asphalt), blur, noise, resolution and
   preferred viewpoints. A camera is a global photometric transform plus a scene: what stays the
   same across cameras (clothing colours, patterns, shoes, bag) *is* the identity.
3. *Rendering.* A person (head, hair, torso with pattern, arms, trousers / shorts / skirt, shoes,
   bag) is drawn from the front, back or side with PIL; the image and the mask are drawn with the
   same shapes, cropped with the same jittered box (detector misalignment) and resized with the same
   geometry (nearest neighbour for the mask), so the mask is exact. Occluders (pole, box, passer-by)
   overwrite both, with label 0.
4. *Splits.* Market-1501 style, see :func:`plan_samples`.
5. *Writer.* Files go to a sibling ``<root>.partial-<pid>-<token>`` folder, the manifest last, then
   one rename makes ``root`` appear complete; an interrupted run never leaves a loadable half dataset.

What makes it hard, all scaled by ``difficulty`` (0 = easy): strong per-camera casts, textured
backgrounds that cover about half of the crop, shared palette colours, twins, viewpoint changes (a
backpack is seen from the back and side, only its straps from the front; a logo only from the
front), misaligned crops, occlusions, blur and noise. An untrained CNN with global average pooling
mostly sees the camera and the background; a trained one can learn the clothing.

Everything random is drawn from ``np.random.default_rng`` seeded by ``(seed, stream, pid, image)``,
so the same preset, seed and difficulty give byte-identical files whatever the number of workers.

Typical use::

    root = generate_synthmarket("data/SynthMarket", preset="default", seed=0)

or ``python -m reidlab.data.synthmarket --root data/SynthMarket --preset default --seed 0``.
"""

from reidlab.data.synthmarket.appearance import (
    Appearance,
    sample_appearance,
    sample_identities,
)
from reidlab.data.synthmarket.cameras import Camera, sample_cameras
from reidlab.data.synthmarket.config import (
    ACCESSORY,
    BACKGROUND,
    BACKGROUND_KINDS,
    CAMPUS,
    HEAD,
    IMAGE_SIZE,
    LOWER,
    MANIFEST_NAME,
    PART_NAMES,
    PRESET_DIFFICULTY,
    PRESETS,
    SHOES,
    SPLIT_DIRS,
    UPPER,
    SynthDomain,
    SynthMarketConfig,
    domain_preset,
    preset_difficulty,
)
from reidlab.data.synthmarket.plan import plan_samples
from reidlab.data.synthmarket.render import SampleSpec, render_sample
from reidlab.data.synthmarket.writer import describe, generate_synthmarket

__all__ = [
    "ACCESSORY",
    "BACKGROUND",
    "BACKGROUND_KINDS",
    "CAMPUS",
    "HEAD",
    "IMAGE_SIZE",
    "LOWER",
    "MANIFEST_NAME",
    "PART_NAMES",
    "PRESET_DIFFICULTY",
    "PRESETS",
    "SHOES",
    "SPLIT_DIRS",
    "UPPER",
    "Appearance",
    "Camera",
    "SampleSpec",
    "SynthDomain",
    "SynthMarketConfig",
    "describe",
    "domain_preset",
    "generate_synthmarket",
    "plan_samples",
    "preset_difficulty",
    "render_sample",
    "sample_appearance",
    "sample_cameras",
    "sample_identities",
]
