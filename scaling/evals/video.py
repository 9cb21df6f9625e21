"""Evaluating a trained video DiT: sampled clips beside the held-out clips (the ceiling), on
what a frame shows, what a clip does in time, and how the model continues given frames.

Suite `clips` (default), per sampler setting and for `real` (as many held-out clips: the
ceiling), each against the other half of the held-out clips:
- time: `motion_residual` (pixels: the RMS distance of the centre of mass from the best
  constant-velocity path with bounces, 0 for a clip that obeys the law of motion),
  `concentration` (the share of each frame's brightness in a digit-sized window on its
  centre of mass: near 1 for one digit, about the window's share of the canvas for noise,
  whose barely moving centre would otherwise pass as a static digit), `lawful_motion` (the
  share of clips with a residual under 0.5 pixels and a concentration over 0.8: the
  exact-match of motion), `identity_consistency`
  (the share of a clip's frames the digits classifier gives the clip's most common label)
  and `clip_fd` (Frechet distance over the clip network's features, an FVD analogue);
- each frame: `class_accuracy` (frames the classifier gives the conditioning class), and
  `frame_fd`, `frame_kid`, `precision`, `recall` of the frames' digits against the held-out
  frames' (`scaling.evals.video_features`).
Suite `continuation`: held-out clips whose second half the model draws given the first;
`path_error` (pixels, the RMS distance of each drawn frame's centre of mass from the true
frame's), with holding the last given frame still as its chance, and the metrics above.
`denoising/t<k>`: held-out denoising error at the config's fixed noise levels.
"""

from __future__ import annotations

import numpy as np

from scaling.data import image_sets, moving_digits
from scaling.errors import RequestError
from scaling.evals import aggregate, dit as dit_eval, image_quality, manifold, metrics
from scaling.evals import video_features
from scaling.evals.request import EvalRequest
from scaling.families.video import clip_config
from scaling.generate import image_sampling, video

SUITES = ("clips", "continuation")
DEFAULT_N = 10  # clips per class when -n is not given
# A clip moves lawfully when its centre keeps within half a pixel of a constant-velocity path
# with bounces and most of its brightness sits in one digit-sized window (noise's centre
# barely moves, so the path alone would pass it).
LAWFUL_RESIDUAL = 0.5
LAWFUL_CONCENTRATION = 0.8


def check(cfg, request: EvalRequest) -> None:
  del cfg
  request.check()
  request.unset(("task_files",), "is for language models, not a video model")
  request.unset(("samplers", "steps", "guidance"), "is not taken by a video model's eval: "
                "it samples with the config's diffusion settings")
  for name in request.suites or ():
    if name not in SUITES:
      raise RequestError("suites", f"unknown suite {name!r} for a video model; known: "
                         f"{', '.join(SUITES)}")


def brightness(clips_NFHWC: np.ndarray) -> np.ndarray:
  """[N, F, H, W] pixel brightness in [0, 255], for centres of mass."""
  return (np.asarray(clips_NFHWC)[..., 0] + 1) * 127.5


class Scorer:
  """The held-out references and the two networks, loaded once per evaluation."""

  def __init__(self, config: moving_digits.MovingDigitsConfig, data_dir: str | None = None,
               *, seed: int = 0):
    self.digit_size, self.seed = config.digit_size, seed
    self.held_out = moving_digits.load("test", config, data_dir)
    # The first half of the held-out clips is the reference the distances measure from;
    # the second half (`real`) scores as the ceiling. Neither network saw either half.
    half = len(self.held_out) // 2
    reference = self.held_out.videos_NFHWC[:half]
    self.real_NFHWC = self.held_out.videos_NFHWC[half:]
    self.real_labels_N = self.held_out.labels_N[half:]
    self.classifier = video_features.digits_classifier(data_dir)
    self.clip_network = video_features.clip_network(config, data_dir)
    self.frames_ND = self.classifier.features(
        video_features.digit_crops(reference, self.digit_size))
    self.frames_per_clip = reference.shape[1]
    self.clips_ND = self.clip_network.features(reference)

  def time_metrics(self, clips_NFHWC, frame_labels_NF) -> dict:
    """Per-clip motion residual, concentration, lawful motion and identity consistency."""
    frames = brightness(clips_NFHWC)
    residual = np.array([moving_digits.motion_residual(c, self.digit_size) for c in frames])
    concentration = np.array([moving_digits.concentration(c, self.digit_size)
                              for c in frames])
    return {"motion_residual": residual, "concentration": concentration,
            "lawful_motion": ((residual < LAWFUL_RESIDUAL)
                              & (concentration > LAWFUL_CONCENTRATION)).astype(float),
            "identity_consistency": video_features.identity(frame_labels_NF)[
                "identity_consistency"]}

  def one_frame_each(self, frames_ND: np.ndarray) -> np.ndarray:
    """Frame i mod F of clip i: a clip's frames show one digit, so with all of them every
    frame's nearest neighbours are its own clip's and the k-NN manifolds shrink to it."""
    per_clip = frames_ND.reshape(-1, self.frames_per_clip, frames_ND.shape[-1])
    return per_clip[np.arange(len(per_clip)), np.arange(len(per_clip)) % self.frames_per_clip]

  def row(self, clips_NFHWC: np.ndarray, labels_N: np.ndarray) -> dict:
    """Every `clips` metric of a set of clips conditioned on `labels_N`."""
    crops = video_features.digit_crops(clips_NFHWC, self.digit_size)
    frame_ND = self.classifier.features(crops)
    frame_labels_NF = self.classifier.predict(crops).reshape(clips_NFHWC.shape[:2])
    per_clip = self.time_metrics(clips_NFHWC, frame_labels_NF)
    per_clip["class_accuracy"] = video_features.identity(frame_labels_NF, labels_N)[
        "class_accuracy"]
    out = {name: metrics.summarize(values) for name, values in per_clip.items()}
    n = len(clips_NFHWC)
    pr = manifold.precision_recall(self.one_frame_each(self.frames_ND),
                                   self.one_frame_each(frame_ND), k=3)
    out.update(frame_fd=image_quality.fd_summary(frame_ND, self.frames_ND),
               frame_kid=image_quality.kid_summary(frame_ND, self.frames_ND, self.seed),
               precision=image_quality.point(pr["precision"], n),
               recall=image_quality.point(pr["recall"], n),
               clip_fd=image_quality.fd_summary(self.clip_network.features(clips_NFHWC),
                                                self.clips_ND))
    chance = {"class_accuracy": 1 / image_sets.NUM_CLASSES, "lawful_motion": 0.0,
              "identity_consistency": video_features.chance_identity(clips_NFHWC.shape[1])}
    return {"n": n, "chance": chance, "metrics": out}


def path_errors(drawn_NFHWC: np.ndarray, true_NFHWC: np.ndarray) -> np.ndarray:
  """Per clip, the RMS distance (pixels) between the drawn and the true frames' centres of
  mass, over frames and both axes."""
  drawn, true = brightness(drawn_NFHWC), brightness(true_NFHWC)
  errors = []
  for a, b in zip(drawn, true):
    centres_a = np.stack([moving_digits.centre_of_mass(f) for f in a])
    centres_b = np.stack([moving_digits.centre_of_mass(f) for f in b])
    errors.append(float(np.sqrt(np.mean(np.square(centres_a - centres_b)))))
  return np.array(errors)


def continuation_row(scorer: Scorer, drawn_NFHWC, true_NFHWC, labels_N, n_new: int) -> dict:
  """Path error of the drawn frames against the truth (chance: the last given frame held
  still), time metrics of the whole clip, identity and class of the drawn frames."""
  new = slice(drawn_NFHWC.shape[1] - n_new, None)
  held = np.repeat(true_NFHWC[:, new.start - 1:new.start], n_new, axis=1)
  crops = video_features.digit_crops(drawn_NFHWC, scorer.digit_size)
  labels_NF = scorer.classifier.predict(crops).reshape(drawn_NFHWC.shape[:2])
  per_clip = scorer.time_metrics(drawn_NFHWC, labels_NF)  # does the drawn half keep the digit
  per_clip["class_accuracy"] = video_features.identity(labels_NF[:, new], labels_N)[
      "class_accuracy"]
  per_clip["path_error"] = path_errors(drawn_NFHWC[:, new], true_NFHWC[:, new])
  return {"n": len(drawn_NFHWC),
          "chance": {"class_accuracy": 1 / image_sets.NUM_CLASSES,
                     "path_error": float(path_errors(held, true_NFHWC[:, new]).mean())},
          "metrics": {name: metrics.summarize(v) for name, v in per_clip.items()}}


def evaluate(run, request: EvalRequest, *, progress: bool = True) -> dict:
  """Scores `n` sampled clips per class (default 10), the held-out clips, and (suite
  `continuation`) the model's second halves of `n` held-out clips per class."""
  del progress
  check(run.cfg, request)
  d = run.cfg.data
  suites = request.suites or SUITES[:1]
  settings = image_sampling.SamplerSettings.from_config(run.cfg.diffusion)
  image_sampling.check_settings(run, settings)
  n = request.n or DEFAULT_N
  scorer = Scorer(clip_config(d), d.data_dir or None, seed=request.seed)
  setting = f"{settings.method}{settings.steps}/g{settings.guidance:g}"
  result = {}
  if "clips" in suites:
    labels = np.repeat(np.arange(d.num_classes), n)
    sampled = video.generate(run, labels, settings, seed=request.seed, batch=request.batch)
    result["clips"] = {setting: scorer.row(sampled, labels)}
    real = scorer.row(scorer.real_NFHWC[:len(labels)], scorer.real_labels_N[:len(labels)])
    result["clips"]["real"] = real
  if "continuation" in suites:
    truth, labels = video.held_out_clips(run, range(d.num_classes), n)
    n_new = d.frames // 2
    drawn = video.continue_clips(run, truth, labels, n_new, settings, seed=request.seed,
                                 batch=request.batch)
    result["continuation"] = {f"{setting}/last{n_new}": continuation_row(
        scorer, drawn, truth, labels, n_new)}
  result["denoising"] = dit_eval.denoising(run, _AsImages(scorer.held_out),
                                          batch=request.batch, seed=0)
  aggregate.write(run.eval_path, result, {
      "workdir": run.workdir, "step": run.step, "suites": list(suites), "n_per_class": n,
      "n_per_subset": n, "sampler": settings.method, "steps": settings.steps,
      "guidance": settings.guidance, "digits_classifier_accuracy": scorer.classifier.accuracy,
      "clip_network": scorer.clip_network.info})
  return result


class _AsImages:
  """A clip set as `dit_eval.denoising` reads an image set: `rows` gives `images`."""

  def __init__(self, clip_set):
    self.clip_set = clip_set

  def __len__(self) -> int:
    return len(self.clip_set)

  def rows(self, index) -> dict:
    return {"images": self.clip_set.videos_NFHWC[index], "labels": self.clip_set.labels_N[index]}
