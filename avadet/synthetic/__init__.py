"""A seeded synthetic AVA: videos, frames and every annotation file in AVA's exact layout.

:func:`make_synthetic` writes a dataset that the whole pipeline (data loading, training,
person boxes, evaluation, data checks) reads exactly like AVA::

    out_dir/
      videos/<vid>.mp4                      already cut: frame 0 shows time segment_start
      frames/<vid>/<vid>_000001.jpg ...     30 fps, 1-based
      frame_lists/{train,val}.csv           PySlowFast frame lists
      annotations/ava_{train,val}_v2.2.csv  gt rows, one per (box, action)
      annotations/ava_action_list_v2.2.pbtxt                     all classes
      annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt  evaluated classes
      annotations/ava_{train,val}_excluded_timestamps_v2.2.csv
      annotations/ava_{train,val}_predicted_boxes.csv            noisy detector boxes
      config.yaml, config_slow.yaml         ready configs (SlowFast, and a Slow-only baseline)
      synthetic_meta.json                   classes, motion-defined ids, the aliasing set-up

The generator's stages, one module each:

- :mod:`avadet.synthetic.spec`: the classes, :class:`SyntheticSpec`, the presets;
- :mod:`avadet.synthetic.plan`: everything random, drawn per video before any drawing;
- :mod:`avadet.synthetic.render`: per-frame motion, person boxes and the painted frames;
- :mod:`avadet.synthetic.write`: the annotation tables, the media, configs and metadata.

The scene: textured figures (striped ellipse body, head, one arm) on a smoothly panning,
noisy background. Each actor's labels are constant over *episodes* of 2-4 s that switch
half-way between keyframes, so a clip around a keyframe sees one set of labels. Classes:

- arm (exactly one): ``fast_wave``, ``arm_still``, ``slow_wave``;
- body (at most one): ``slow_sway`` (horizontal), ``fast_bounce`` (vertical);
- held object (at most one): ``hold_red`` (square), ``hold_blue`` (disc), ``hold_green``
  (diamond, not evaluated, like AVA's 20 rare classes);
- ``wear_hat``.

**Aliasing.** The Slow pathway sees the frames at offsets ``tau`` apart (``tau`` = the slow
frame stride in frames, 10 for 16 fast frames at stride 2 and alpha 4). A periodic motion
whose period is ``tau`` frames is sampled at the same phase in every slow frame, so it looks
frozen to the Slow pathway, while the Fast pathway (stride ``tau / alpha`` or so) sees
``tau / sampling_rate`` samples per period. ``fast_wave`` vs ``arm_still`` and
``fast_bounce`` vs no body motion differ only in such a motion; the frozen pose of the still
classes is drawn from the same distribution as a random phase of the fast ones, so a model
that sees only slow frames cannot tell them apart. ``slow_wave`` and ``slow_sway`` move slowly
enough for both pathways.

Reading results by class group (fast motion, slow motion, appearance) is the demo's business:
:mod:`avadet.api.demo_analysis`.
"""

from avadet.synthetic.plan import (
    ActorPlan,
    VideoPlan,
    keyframe_index,
    keyframe_timestamps,
    plan_dataset,
)
from avadet.synthetic.render import ActorTracks, actor_boxes, actor_tracks, render_frames
from avadet.synthetic.spec import (
    ARM_CLASSES,
    CLASS_BY_NAME,
    CLASSES,
    PRESETS,
    SyntheticClass,
    SyntheticSpec,
    dataset_classes,
    motion_class_ids,
    resolve_spec,
    slow_frame_offsets,
    slow_stride,
    synthetic_labelmap,
)
from avadet.synthetic.write import (
    GENERATOR_VERSION,
    META_NAME,
    annotation_table,
    config_dict,
    load_meta,
    make_synthetic,
    predicted_boxes_table,
    write_annotations,
)

__all__ = [
    "ARM_CLASSES",
    "CLASSES",
    "CLASS_BY_NAME",
    "GENERATOR_VERSION",
    "META_NAME",
    "PRESETS",
    "ActorPlan",
    "ActorTracks",
    "SyntheticClass",
    "SyntheticSpec",
    "VideoPlan",
    "actor_boxes",
    "actor_tracks",
    "annotation_table",
    "config_dict",
    "dataset_classes",
    "keyframe_index",
    "keyframe_timestamps",
    "load_meta",
    "make_synthetic",
    "motion_class_ids",
    "plan_dataset",
    "predicted_boxes_table",
    "render_frames",
    "resolve_spec",
    "slow_frame_offsets",
    "slow_stride",
    "synthetic_labelmap",
    "write_annotations",
]
