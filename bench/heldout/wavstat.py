#!/usr/bin/env python3
"""bench/heldout/wavstat.py: peak, RMS and length of WAV files, and whether each is usable.

Reads 16/24/32-bit integer and 32-bit float WAVs with the standard library only. Prints one
tab-separated line per file: name, frames, sample rate, channels, peak dBFS, RMS dBFS, verdict.
The verdict is "ok", or what is wrong: "silent" (RMS below -60 dBFS), "clipped" (peak at or
above -0.01 dBFS, which lv2file's clamp leaves), "length" (frames differ from --frames).
Exits 1 when any file is not ok.

Usage: wavstat.py [--frames N] FILE...
"""
import array
import math
import struct
import sys

SILENT_RMS_DBFS = -60.0
CLIPPED_PEAK_DBFS = -0.01


def read_wav(path):
    """(sample rate in Hz, channels, interleaved samples as floats in -1..1)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path} is not a RIFF WAVE file")
    fmt = None
    samples = None
    at = 12
    while at + 8 <= len(data):
        tag, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        body = data[at + 8:at + 8 + size]
        if tag == b"fmt ":
            code, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if code == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the real code opens the subformat GUID
                code = struct.unpack("<H", body[24:26])[0]
            fmt = (code, channels, rate, bits)
        elif tag == b"data":
            samples = body
        at += 8 + size + (size & 1)
    if fmt is None or samples is None:
        raise ValueError(f"{path} has no fmt or data chunk")
    code, channels, rate, bits = fmt
    if code == 3 and bits == 32:
        values = array.array("f")
        values.frombytes(samples[: len(samples) // 4 * 4])
        out = values
    elif code == 1 and bits in (16, 32):
        values = array.array("h" if bits == 16 else "i")
        values.frombytes(samples[: len(samples) // (bits // 8) * (bits // 8)])
        scale = 1.0 / (1 << (bits - 1))
        out = [v * scale for v in values]
    elif code == 1 and bits == 24:
        scale = 1.0 / (1 << 23)
        out = [int.from_bytes(samples[i:i + 3], "little", signed=True) * scale
               for i in range(0, len(samples) - 2, 3)]
    else:
        raise ValueError(f"{path}: unsupported WAV format (code {code}, {bits} bits)")
    return rate, channels, out


def dbfs(x):
    return 20.0 * math.log10(x) if x > 0 else float("-inf")


def main():
    args = sys.argv[1:]
    frames_expected = None
    if args[:1] == ["--frames"]:
        frames_expected, args = int(args[1]), args[2:]
    if not args:
        sys.exit(__doc__.strip().splitlines()[-1])
    bad = 0
    for path in args:
        rate, channels, samples = read_wav(path)
        frames = len(samples) // channels
        peak = max(max(samples), -min(samples))
        rms = math.sqrt(math.fsum(v * v for v in samples) / max(len(samples), 1))
        problems = []
        if dbfs(rms) < SILENT_RMS_DBFS:
            problems.append("silent")
        if dbfs(peak) >= CLIPPED_PEAK_DBFS:
            problems.append("clipped")
        if frames_expected is not None and frames != frames_expected:
            problems.append(f"length (expected {frames_expected})")
        bad += bool(problems)
        print(f"{path}\t{frames}\t{rate}\t{channels}\t{dbfs(peak):.2f}\t{dbfs(rms):.2f}\t"
              f"{', '.join(problems) or 'ok'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
