"""int8 vs float agreement: calibration and quantisation candidates measured on the same photos (issue 21).

Scratch study, not part of the kit: it calls convert's own pieces (``convert.quantize.convert``,
``convert.int8.diagnosis.LayerDebugger``, ``convert.variants.write_model``, the runner's ``Classifier``) so each
candidate is built and run as ``python -m convert export`` would, and caches everything under OUT.

    export STUDY_TRAIN=runs/cats_dogs/train STUDY_SHIPPED=runs/cats_dogs/tflite/cats_dogs_int8.tflite STUDY_OUT=/tmp/int8
    python tests/benchmarks/study_int8_agreement.py prep              # decode validation/holdout/train once; Keras probs
    python tests/benchmarks/study_int8_agreement.py cand r300s0 src1000s0 r300s0+float2 i16_r300s0 ...
    python tests/benchmarks/study_int8_agreement.py table r300s0 ...  # agreement/accuracy on validation and holdout
    python tests/benchmarks/study_int8_agreement.py latency r300s0 ...# 1-thread latency, interleaved with the shipped int8
    python tests/benchmarks/study_int8_agreement.py ties NAME         # the float model's top two on each disagreement
    python tests/benchmarks/study_int8_agreement.py noise             # the float model vs itself, pixels +-1 / +-2

Candidate names: ``r<N>s<SEED>`` N train photos as export samples them; ``src<N>s<SEED>`` / ``cls<N>s<SEED>`` N photos,
equal share per source / class; ``all``; suffixes ``+mirror`` (second half mirrored, as ``int8_calib``), ``+pt``
(per-tensor weights), ``+floatK`` (the K worst layers of the diagnosis and their readers in float), ``+head`` (the
classifier's FULLY_CONNECTED and softmax in float), ``+proj`` (every linear-bottleneck output in float),
``+dw0`` (the first depthwise convolution and its reader in float: what the int8 variant now does);
``i16_<calibration>`` int16x8. ``extra NAME ...``: agreement on the train photos too (no labels needed).
Plain candidates build what ``convert.quantize.convert(model, "int8")`` builds: the table in convert/README.md was
measured before the int8 variant kept its first depthwise convolution in float (the ``+dw0`` rows are that change).
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np

import os

OUT = Path(os.environ.get("STUDY_OUT", "/tmp/int8_study"))
CACHE = OUT / "cache"
CANDS = OUT / "cands"
TRAIN = Path(os.environ.get("STUDY_TRAIN", "runs/cats_dogs/train"))
SHIPPED = Path(os.environ.get("STUDY_SHIPPED", "runs/cats_dogs/tflite/cats_dogs_int8.tflite"))
CACHE.mkdir(parents=True, exist_ok=True)
CANDS.mkdir(parents=True, exist_ok=True)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def source():
    from convert.source import load_training_output
    return load_training_output(TRAIN)


def prep():
    from convert.photos import decode, split_photos
    from convert.source import load_keras_model
    from convert.gate.accuracy import predict_keras
    src = source()
    spec = src.spec
    model = load_keras_model(src)
    for part in ("validation", "holdout", "train"):
        entries = src.split_entries(part)
        photos = split_photos(entries, spec.labels, part)
        d = decode(photos, spec, draft=True)
        assert len(d.photos) == len(photos), part
        np.save(CACHE / f"{part}_pixels.npy", d.pixels)
        meta = [{"path": str(e["path"]), "label": e["label"], "source": e.get("source", "")} for e in entries]
        (CACHE / f"{part}.json").write_text(json.dumps(meta))
        if part != "train":
            np.save(CACHE / f"{part}_keras.npy", predict_keras(model, d.pixels))
        log(part, len(photos))


def load(part):
    return np.load(CACHE / f"{part}_pixels.npy", mmap_mode="r"), json.loads((CACHE / f"{part}.json").read_text())


def sample_random(meta, size, seed):
    """What convert.photos.sample_calibration picks (all train photos readable): seeded shuffle of sorted paths."""
    order = sorted(m["path"] for m in meta)
    random.Random(seed).shuffle(order)
    index = {m["path"]: i for i, m in enumerate(meta)}
    return [index[p] for p in order[:size]]


def sample_balanced(meta, size, seed, key):
    """Equal share per group (water-filling: small groups give all they have), seeded within each group."""
    groups = {}
    for i, m in enumerate(sorted(range(len(meta)), key=lambda i: meta[i]["path"])):
        groups.setdefault(meta[m][key], []).append(m)
    rng = random.Random(seed)
    for g in sorted(groups):
        rng.shuffle(groups[g])
    quota = {g: 0 for g in groups}
    left = min(size, len(meta))
    open_ = sorted(groups, key=lambda g: len(groups[g]))
    while left and open_:
        share = max(1, left // len(open_))
        for g in list(open_):
            take = min(share, len(groups[g]) - quota[g], left)
            quota[g] += take
            left -= take
            if quota[g] == len(groups[g]):
                open_.remove(g)
            if not left:
                break
    return [i for g in sorted(groups) for i in groups[g][:quota[g]]]


def calibration_indices(name, meta):
    # names: r300s0, r1000s1, all, src1000s0, cls1000s0
    if name == "all":
        return list(range(len(meta)))
    for prefix, key in (("src", "source"), ("cls", "label")):
        if name.startswith(prefix):
            size, seed = name[len(prefix):].split("s")
            return sample_balanced(meta, int(size), int(seed), key)
    size, seed = name[1:].split("s")
    return sample_random(meta, int(size), int(seed))


def calib_pixels(cal, mirror=False):
    pixels, meta = load("train")
    idx = calibration_indices(cal, meta)
    x = np.asarray(pixels[idx], dtype=np.float32)
    if mirror:  # as int8_calib: second half mirrored left-right
        half = len(x) // 2
        x = np.concatenate([x[:half], x[half:, :, ::-1, :]])
    from convert.quantize import pin_input_range
    pin_input_range(x)
    counts = {}
    for i in idx:
        counts[meta[i]["source"]] = counts.get(meta[i]["source"], 0) + 1
    return np.ascontiguousarray(x), counts


_model = None


def keras_model():
    global _model
    if _model is None:
        from convert.source import load_keras_model
        _model = load_keras_model(source())
    return _model


def build(name):
    """Candidate name grammar: CAL[+mirror][+pt][+head|+floatK] | i16_CAL."""
    from convert.quantize import convert
    parts = name.split("+")
    cal = parts[0]
    if cal.startswith("i16_"):
        x, counts = calib_pixels(cal[4:])
        return convert(keras_model(), "int16x8", x), "int16x8", counts
    x, counts = calib_pixels(cal, mirror="mirror" in parts)
    if "pt" in parts:  # per-tensor weights
        import tensorflow as tf
        conv = tf.lite.TFLiteConverter.from_keras_model(keras_model())
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([s[np.newaxis]] for s in x)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        conv.inference_output_type = tf.uint8
        conv._experimental_disable_per_channel = True
        return bytes(conv.convert()), "int8", counts
    denylist = [p for p in parts[1:] if p.startswith("float") or p in ("head", "proj", "dw0")]
    if denylist:
        from convert.int8.diagnosis import LayerDebugger, with_consumers
        dbg = LayerDebugger(keras_model(), x)
        diag = dbg.diagnose(x[:50])
        (CANDS / f"{name}.diagnosis.json").write_text(json.dumps(
            [{"layer": l.layer, "tensor": l.tensor, "rel": l.relative_rmse} for l in diag.worst(10)]))
        d = denylist[0]
        if d == "head":
            from convert.quantize import _tfl
            m = _tfl.Model.GetRootAs(dbg.instrumented, 0)
            g = m.Subgraphs(0)
            names = [g.Tensors(i).Name().decode() for i in range(g.TensorsLength())]
            ops = []
            for i in range(g.OperatorsLength()):
                op = g.Operators(i)
                code = m.OperatorCodes(op.OpcodeIndex())
                ops.append((max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), [names[op.Outputs(j)] for j in range(op.OutputsLength())]))
            fc = _tfl.BuiltinOperator.FULLY_CONNECTED
            tensors = [t for c, outs in ops if c == fc for t in outs]
            tensors = with_consumers(dbg.instrumented, tensors)
        elif d == "dw0":  # the first depthwise convolution (expanded_conv) and its reader
            tensors = with_consumers(dbg.instrumented, [l.tensor for l in diag.layers if l.layer == "expanded_conv_depthwise_relu"])
        elif d == "proj":  # every linear-bottleneck output (project conv + BN, unbounded, no ReLU6)
            tensors = with_consumers(dbg.instrumented, [l.tensor for l in diag.layers if l.layer.endswith("project_BN")])
        else:
            k = int(d[5:])
            tensors = with_consumers(dbg.instrumented, list(diag.ranking[:k]))
        log(name, "denylisted", tensors)
        return dbg.selective(tensors), "float-io", counts
    return convert(keras_model(), "int8", x), "int8", counts


def cand(name):
    path = CANDS / f"{name}.tflite"
    probs_path = CANDS / f"{name}.probs.npz"
    if probs_path.exists():
        log(name, "cached")
        return
    if not path.exists():
        from convert.variants import write_model
        from convert.tflite.metadata import ModelInfo
        t = time.perf_counter()
        bare, check_as, counts = build(name)
        secs = time.perf_counter() - t
        variant = "int16x8" if check_as == "int16x8" else ("int8" if check_as == "int8" else "int8_float")
        write_model(bare, source(), variant, f"study-{name}", None, ModelInfo(), path, check_as=check_as)
        (CANDS / f"{name}.build.json").write_text(json.dumps({"seconds": round(secs, 1), "calibration": counts}))
        log(name, f"built in {secs:.0f}s", path.stat().st_size)
    from convert.gate.accuracy import predict_tflite
    out = {}
    for part in ("validation", "holdout"):
        pixels, _ = load(part)
        t = time.perf_counter()
        out[part] = predict_tflite(path, np.asarray(pixels), num_threads=1)
        log(name, part, f"{time.perf_counter() - t:.0f}s")
    np.savez(probs_path, **out)


def shipped():
    probs_path = CANDS / "shipped.probs.npz"
    if not probs_path.exists():
        from convert.gate.accuracy import predict_tflite
        out = {part: predict_tflite(SHIPPED, np.asarray(load(part)[0]), num_threads=1) for part in ("validation", "holdout")}
        np.savez(probs_path, **out)


def latency(names, runs=int(os.environ.get("STUDY_RUNS", "40"))):
    from edge_runner.core.model import Classifier
    from edge_runner.common.timing import time_interleaved
    pixels = np.asarray(load("validation")[0][0])
    paths = {"shipped": SHIPPED, **{n: (Path(n) if n.startswith("/") else CANDS / f"{n}.tflite") for n in names}}
    cls = {n: Classifier(p, num_threads=1) for n, p in paths.items()}
    times = time_interleaved([lambda c=c: c.probabilities(pixels) for c in cls.values()], runs=runs, warmup=3)
    res = {n: float(np.median(t)) for n, t in zip(cls, times)}
    res["_loadavg"] = os.getloadavg()
    old = json.loads((OUT / "latency.json").read_text()) if (OUT / "latency.json").exists() else {}
    old[",".join(names)] = res
    (OUT / "latency.json").write_text(json.dumps(old, indent=1))
    log(res)


def table(names):
    labels = source().spec.labels
    rows = []
    for name in ["shipped"] + names:
        p = np.load(CANDS / f"{name}.probs.npz")
        row = {"name": name}
        for part in ("validation", "holdout"):
            k = np.load(CACHE / f"{part}_keras.npy")
            meta = json.loads((CACHE / f"{part}.json").read_text())
            truth = np.array([labels.index(m["label"]) for m in meta])
            a, b = k.argmax(1), p[part].argmax(1)
            row[part] = {"agree": float((a == b).mean() * 100), "differ": int((a != b).sum()),
                         "acc": float((b == truth).mean() * 100), "keras_acc": float((a == truth).mean() * 100),
                         "sure_flip": int(((a != b) & (k.max(1) >= 0.9)).sum())}
        f = CANDS / f"{name}.tflite"
        row["mb"] = (SHIPPED if name == "shipped" else f).stat().st_size / 1e6
        rows.append(row)
        v, h = row["validation"], row["holdout"]
        print(f"{name:28s} val agree {v['agree']:.2f}% ({v['differ']:2d} differ, {v['sure_flip']} sure) acc {v['acc']:.2f}% | "
              f"holdout agree {h['agree']:.2f}% ({h['differ']} differ) acc {h['acc']:.2f}% | {row['mb']:.2f} MB")
    (OUT / "table.json").write_text(json.dumps(rows, indent=1))


def ties(name):
    """The float model's top two probabilities on each photo where ``name`` disagrees, and margin counts."""
    for part in ("validation", "holdout"):
        k = np.load(f"{CACHE}/{part}_keras.npy"); q = np.load(f"{CANDS}/{name}.probs.npz")[part]
        meta = json.loads((CACHE / f"{part}.json").read_text())
        s = np.sort(k, 1); margin = s[:, -1] - s[:, -2]
        dis = np.flatnonzero(k.argmax(1) != q.argmax(1))
        print(f"\n{part}: {len(dis)} of {len(k)} differ ({name})")
        print("photo | source | label | float top1 p | float top2 p | margin | int8 answer p | |dp| max")
        for i in dis[np.argsort(margin[dis])]:
            o = np.argsort(-k[i])
            print(f"{meta[i]['path'].split('/')[-1]} | {meta[i]['source']} | {meta[i]['label']} | {k[i,o[0]]:.3f} | {k[i,o[1]]:.3f} | {margin[i]:.3f} | {q[i].max():.3f} | {np.abs(k[i]-q[i]).max():.3f}")
        dp = np.abs(k - q).max(1)
        print("int8 |dp| (max over classes): median %.4f p90 %.4f p99 %.4f max %.4f" % tuple(np.percentile(dp, [50, 90, 99, 100])))
        for t in (0.01, 0.02, 0.05, 0.1, 0.2):
            m = margin < t
            print(f"float margin < {t}: {m.sum()} photos ({100*m.mean():.2f}%); of them int8 differs on {(m & (k.argmax(1)!=q.argmax(1))).sum()}")
        # floor: photos whose margin is below twice the typical int8 perturbation
        for pct in (90, 99):
            thr = 2 * np.percentile(dp, pct)
            print(f"margin < 2 x p{pct} |dp| ({thr:.3f}): {(margin<thr).sum()} photos -> agreement floor if all flip ~{100*(1-(margin<thr).mean()):.2f}%")


def noise(amplitudes=(1, 2), seeds=(0, 1)):
    """The float model against itself with every pixel moved by at most +-A (uniform integers): answers that flip."""
    from convert.gate.accuracy import predict_keras
    res = {}
    for part in ("validation", "holdout"):
        k = np.load(CACHE / f"{part}_keras.npy")
        px = np.asarray(load(part)[0]).astype(np.int16)
        for amp in amplitudes:
            for seed in seeds:
                shift = np.random.default_rng(seed).integers(-amp, amp + 1, size=px.shape)
                q = predict_keras(keras_model(), np.clip(px + shift, 0, 255).astype(np.uint8))
                res[f"{part} +-{amp} seed{seed}"] = {"differ": int((q.argmax(1) != k.argmax(1)).sum()), "photos": len(k)}
                log(part, amp, seed, res[f"{part} +-{amp} seed{seed}"])
    (OUT / "noise.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    cmd, *names = sys.argv[1:]
    if cmd == "prep":
        prep()
    elif cmd == "cand":
        shipped()
        for n in names:
            try:
                cand(n)
            except Exception as exc:  # keep going
                import traceback
                traceback.print_exc()
                log(n, "FAILED", exc)
    elif cmd == "extra":  # agreement on the train photos (no labels needed): a third, larger sample
        from convert.gate.accuracy import predict_keras, predict_tflite
        kp = CACHE / "train_keras.npy"
        pixels = np.asarray(load("train")[0])
        if not kp.exists():
            np.save(kp, predict_keras(keras_model(), pixels))
        k = np.load(kp).argmax(1)
        res = json.loads((OUT / "train_agreement.json").read_text()) if (OUT / "train_agreement.json").exists() else {}
        for n in names:
            f = SHIPPED if n == "shipped" else CANDS / f"{n}.tflite"
            q = predict_tflite(f, pixels, num_threads=1).argmax(1)
            res[n] = {"agree": float((q == k).mean() * 100), "differ": int((q != k).sum()), "photos": len(k)}
            log(n, res[n])
            (OUT / "train_agreement.json").write_text(json.dumps(res, indent=1))
    elif cmd == "latency":
        latency(names)
    elif cmd == "table":
        table(names)
    elif cmd == "noise":
        noise()
    elif cmd == "ties":
        ties(names[0] if names else "shipped")
