#!/usr/bin/env python3
"""bench/heldout/make_takes.py: writes the two MIDI parts of the held-out yardstick.

Take A ("train", about 3 minutes) and take B ("heldout", about 50 s) are guitar and bass DI
parts played by General MIDI instruments: riffs, strummed chords, arpeggios, palm mutes,
bends and vibrato, bass lines and soft-to-hard picking (velocity 30..127). The two takes use
different keys, tempos, progressions and seeds, so take B shares playing techniques with take
A but no notes in the same order. Standard library only; the same seed writes the same bytes.

Usage: make_takes.py OUT_DIR   (writes OUT_DIR/takeA.mid and OUT_DIR/takeB.mid)
"""
import math
import random
import struct
import sys

TICKS_PER_BEAT = 480
BEATS_PER_BAR = 4

# General MIDI programs, numbered 1..128 as in the GM table (the program change byte is n - 1).
JAZZ_GUITAR = 27
CLEAN_GUITAR = 28
MUTED_GUITAR = 29
FINGER_BASS = 34
PICK_BASS = 35

# Standard tuning, low to high, as MIDI notes (E2 A2 D3 G3 B3 E4).
GUITAR_STRINGS = [40, 45, 50, 55, 59, 64]
MINOR_PENTATONIC = [0, 3, 5, 7, 10]
DORIAN = [0, 2, 3, 5, 7, 9, 10]
NATURAL_MINOR = [0, 2, 3, 5, 7, 8, 10]
CHORDS = {"": [0, 4, 7], "m": [0, 3, 7], "7": [0, 4, 7, 10], "m7": [0, 3, 7, 10], "5": [0, 7]}
NOTE_NAMES = {"C": 0, "C#": 1, "Db": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "F#": 6,
              "G": 7, "Ab": 8, "A": 9, "Bb": 10, "B": 11}


def chord(name):
    """'Em7' -> (pitch class of the root, intervals)."""
    root = name[:2] if name[1:2] in ("#", "b") else name[:1]
    return NOTE_NAMES[root], CHORDS[name[len(root):]]


def guitar_voicing(name, lowest_fret=0):
    """One note per string for a chord shape at or above lowest_fret, low to high; strings
    that have no chord tone within four frets are left out."""
    root, intervals = chord(name)
    tones = {(root + i) % 12 for i in intervals}
    # Put the root on the low E or A string, whichever is nearer the requested position.
    frets = [(root - s) % 12 for s in GUITAR_STRINGS[:2]]
    for k in range(2):
        while frets[k] < lowest_fret:
            frets[k] += 12
    base_string = 0 if frets[0] <= frets[1] else 1
    position = frets[base_string]
    notes = [GUITAR_STRINGS[base_string] + position]
    for string in GUITAR_STRINGS[base_string + 1:]:
        choices = [f for f in range(max(position - 1, 0), position + 4) if (string + f) % 12 in tones]
        if choices:
            notes.append(string + choices[0])
    return notes


class Take:
    """A single-track MIDI performance laid out section after section, in beats."""

    def __init__(self, bpm, seed):
        self.bpm = bpm
        self.rng = random.Random(seed)
        self.events = []  # (tick, order, bytes)
        self.beat = 1.0  # one beat of silence first
        self.channels = iter([0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15])  # 9 is drums

    def _tick(self, beat):
        # Timing a few milliseconds off the grid, as a player is.
        jitter_beats = self.rng.uniform(-0.006, 0.006) * self.bpm / 60.0
        return max(0, round((beat + jitter_beats) * TICKS_PER_BEAT))

    def new_channel(self, program):
        """Next free channel set to `program` (GM 1..128), pitch-bend range +-2 semitones."""
        channel = next(self.channels)
        at = round(self.beat * TICKS_PER_BEAT) - 1
        for data in ([0xC0 | channel, program - 1],
                     [0xB0 | channel, 101, 0], [0xB0 | channel, 100, 0],
                     [0xB0 | channel, 6, 2], [0xB0 | channel, 38, 0],
                     [0xB0 | channel, 101, 127], [0xB0 | channel, 100, 127],
                     [0xE0 | channel, 0, 64]):
            self.events.append((at, 0, bytes(data)))
        return channel

    def note(self, channel, beat, beats, pitch, velocity):
        velocity = max(1, min(127, round(velocity + self.rng.uniform(-5, 5))))
        on = self._tick(beat)
        off = max(on + 1, self._tick(beat + beats))
        self.events.append((on, 2, bytes([0x90 | channel, pitch, velocity])))
        self.events.append((off, 1, bytes([0x80 | channel, pitch, 0])))

    def bend(self, channel, beat, semitones):
        """Pitch bend at `beat` (exact, no jitter), in semitones within the +-2 range."""
        value = max(0, min(16383, round(8192 + semitones / 2.0 * 8192)))
        self.events.append((round(beat * TICKS_PER_BEAT), 1, bytes([0xE0 | channel, value & 0x7F, value >> 7])))

    def rest(self, beats):
        self.beat += beats

    def smf(self):
        """The take as a format-0 Standard MIDI File."""
        end = max(t for t, _, _ in self.events) + 2 * TICKS_PER_BEAT * self.bpm // 60  # 2 s of tail
        tempo = round(60_000_000 / self.bpm)
        track = bytearray(b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big"))
        now = 0
        for tick, _, data in sorted(self.events, key=lambda e: (e[0], e[1])):
            track += vlq(tick - now) + data
            now = tick
        track += vlq(end - now) + b"\xff\x2f\x00"
        header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
        return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def vlq(value):
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def ramp(position, low, high):
    """Velocity from low to high and back as position goes 0..1."""
    return low + (high - low) * (1.0 - abs(2.0 * position - 1.0))


# Sections. Each plays `bars` bars from take.beat on its own channel, then leaves a rest.

def riff(take, program, key, scale, bars, subdivision, velocity=(55, 105)):
    """A two-bar motif from `scale`, repeated with variations, single notes."""
    channel = take.new_channel(program)
    rng = take.rng
    step = 1.0 / subdivision
    degrees = [key + 12 * octave + d for octave in (0, 1, 2) for d in scale]
    degrees = [p for p in degrees if 40 <= p <= 79]
    motif, index = [], rng.randrange(len(degrees) // 3)
    for _ in range(int(2 * BEATS_PER_BAR * subdivision)):
        index = max(0, min(len(degrees) - 1, index + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3])))
        motif.append(None if rng.random() < 0.15 else degrees[index])
    total = int(bars * BEATS_PER_BAR * subdivision)
    for k in range(total):
        pitch = motif[k % len(motif)]
        if k >= len(motif) and rng.random() < 0.2 and pitch is not None:
            pitch = rng.choice(degrees[:12])  # a variation
        if pitch is None:
            continue
        accent = 12 if k % subdivision == 0 else 0
        length = step * (0.55 if rng.random() < 0.3 else 0.95)
        take.note(channel, take.beat + k * step, length, pitch, ramp(k / total, *velocity) + accent)
    take.rest(bars * BEATS_PER_BAR + 1)


def strum(take, program, progression, bars, pattern, velocity=(40, 115), lowest_fret=0):
    """Strummed chords, one per bar; `pattern` is eighth notes: D down, U up, - rest."""
    channel = take.new_channel(program)
    rng = take.rng
    total = bars * len(pattern)
    for bar in range(bars):
        notes = guitar_voicing(progression[bar % len(progression)], lowest_fret)
        for k, stroke in enumerate(pattern):
            if stroke == "-":
                continue
            at = take.beat + bar * BEATS_PER_BAR + k * 0.5
            order = notes if stroke == "D" else list(reversed(notes))
            spread = rng.uniform(0.012, 0.03) * take.bpm / 60.0  # beats between strings
            level = ramp((bar * len(pattern) + k) / total, *velocity) - (10 if stroke == "U" else 0)
            following = [j for j in range(k + 1, len(pattern)) if pattern[j] != "-"]
            ring = 0.5 * ((following[0] if following else len(pattern)) - k) - 0.05
            for i, pitch in enumerate(order):
                take.note(channel, at + i * spread, ring, pitch, level - 3 * i)
    take.rest(bars * BEATS_PER_BAR + 1)


def arpeggio(take, program, progression, bars, figure, velocity=(45, 100)):
    """Chord tones picked one at a time in `figure` order (indices into the voicing),
    sixteenth notes, each left ringing for a beat."""
    channel = take.new_channel(program)
    total = bars * 16
    for bar in range(bars):
        notes = guitar_voicing(progression[bar % len(progression)], 3)
        for k in range(16):
            pitch = notes[figure[k % len(figure)] % len(notes)]
            take.note(channel, take.beat + bar * BEATS_PER_BAR + k * 0.25, 1.0, pitch,
                      ramp((bar * 16 + k) / total, *velocity))
    take.rest(bars * BEATS_PER_BAR + 1)


def palm_mute(take, program, roots, bars, velocity=(70, 120)):
    """Sixteenth-note chugs on low power chords, staccato, with open accents."""
    channel = take.new_channel(program)
    rng = take.rng
    total = bars * 16
    for bar in range(bars):
        root = roots[bar % len(roots)]
        for k in range(16):
            at = take.beat + bar * BEATS_PER_BAR + k * 0.25
            accent = k in (0, 6, 10) or (k == 14 and rng.random() < 0.5)
            if not accent and rng.random() < 0.12:
                continue
            length = 0.45 if accent else rng.uniform(0.08, 0.14)
            level = ramp((bar * 16 + k) / total, *velocity) + (10 if accent else -8)
            take.note(channel, at, length, root, level)
            if accent:
                take.note(channel, at + 0.01, length, root + 7, level - 6)
    take.rest(bars * BEATS_PER_BAR + 1)


def bends(take, program, key, bars, velocity=(60, 120)):
    """Held notes bent up a half or whole step and back, some with vibrato: two notes a bar."""
    channel = take.new_channel(program)
    rng = take.rng
    pool = [key + 12 + d for d in (0, 3, 5, 7, 10, 12, 15)]
    for n in range(bars * 2):
        at = take.beat + n * 2.0
        pitch = rng.choice(pool)
        up = rng.choice([1.0, 2.0, 2.0])
        take.note(channel, at, 1.85, pitch, ramp(n / (bars * 2), *velocity))
        steps = 12
        for s in range(steps + 1):  # rise over a quarter beat
            take.bend(channel, at + 0.1 + 0.25 * s / steps, up * s / steps)
        if rng.random() < 0.5:  # vibrato on the bent note
            for s in range(48):
                take.bend(channel, at + 0.4 + s * 0.025, up - 0.15 * (1 - math.cos(math.pi * s / 4)))
            take.bend(channel, at + 1.6, up)
        for s in range(steps + 1):  # release
            take.bend(channel, at + 1.62 + 0.2 * s / steps, up * (1 - s / steps))
    take.rest(bars * BEATS_PER_BAR + 1)


def bass_line(take, program, progression, bars, velocity=(50, 115)):
    """Eighth-note root/fifth/octave lines with passing notes, some staccato."""
    channel = take.new_channel(program)
    rng = take.rng
    total = bars * 8
    for bar in range(bars):
        root, intervals = chord(progression[bar % len(progression)])
        low = 28 + (root - 4) % 12  # E1..D#2
        shape = [0, 0, 7, 12, 0, 7, 10 if 3 in intervals else 9, 7]
        for k in range(8):
            if rng.random() < 0.08:
                continue
            length = 0.2 if rng.random() < 0.35 else 0.48
            take.note(channel, take.beat + bar * BEATS_PER_BAR + k * 0.5, length, low + shape[k],
                      ramp((bar * 8 + k) / total, *velocity) + (8 if k % 2 == 0 else 0))
    take.rest(bars * BEATS_PER_BAR + 1)


def dynamics(take, program, progression, bars):
    """One chord stab a beat, then single notes, from velocity 30 to 127 and back."""
    channel = take.new_channel(program)
    beats = bars * BEATS_PER_BAR
    for b in range(beats):
        level = ramp(b / (beats - 1), 30, 127)
        name = progression[(b // BEATS_PER_BAR) % len(progression)]
        at = take.beat + b
        if b % 2 == 0:
            for i, pitch in enumerate(guitar_voicing(name, 5)):
                take.note(channel, at + i * 0.03, 0.9, pitch, level)
        else:
            root, _ = chord(name)
            take.note(channel, at, 0.45, 52 + (root - 4) % 12, level)
            take.note(channel, at + 0.5, 0.45, 59 + (root - 11) % 12, level)
    take.rest(beats + 1)


def take_a():
    """Train: E minor and A, 100 BPM, seed 11, about three minutes."""
    take = Take(bpm=100, seed=11)
    riff(take, CLEAN_GUITAR, 40, MINOR_PENTATONIC, 8, 2)
    strum(take, JAZZ_GUITAR, ["Em", "C", "G", "D"], 8, "D-DUUDU-")
    palm_mute(take, MUTED_GUITAR, [40, 43, 45, 40], 6)
    arpeggio(take, CLEAN_GUITAR, ["Am", "F", "C", "G"], 8, [0, 2, 3, 4, 5, 4, 3, 2])
    bends(take, CLEAN_GUITAR, 52, 6)
    bass_line(take, FINGER_BASS, ["Em", "C", "G", "D"], 8)
    dynamics(take, CLEAN_GUITAR, ["E5", "A5", "G5", "D5"], 6)
    riff(take, JAZZ_GUITAR, 45, DORIAN, 6, 4, velocity=(45, 95))
    palm_mute(take, CLEAN_GUITAR, [45, 45, 48, 43], 4)
    bass_line(take, PICK_BASS, ["Am", "Am", "F", "G"], 6)
    strum(take, CLEAN_GUITAR, ["E5", "G5", "A5", "C5"], 6, "DDUDDUDU", velocity=(60, 127))
    dynamics(take, JAZZ_GUITAR, ["Em7", "A7"], 4)
    return take


def take_b():
    """Held out: D minor and G minor, 84 BPM, seed 23, about 50 seconds."""
    take = Take(bpm=84, seed=23)
    riff(take, CLEAN_GUITAR, 50, MINOR_PENTATONIC, 3, 4, velocity=(50, 110))
    strum(take, JAZZ_GUITAR, ["Dm", "Bb", "F", "C"], 3, "D-D-DUDU")
    palm_mute(take, MUTED_GUITAR, [50, 41, 50, 43], 2)
    arpeggio(take, CLEAN_GUITAR, ["Gm", "Eb", "Bb", "F"], 3, [0, 3, 1, 4, 2, 5, 3, 1])
    bends(take, JAZZ_GUITAR, 50, 2)
    bass_line(take, FINGER_BASS, ["Dm", "Bb", "Gm", "A"], 2)
    dynamics(take, CLEAN_GUITAR, ["D5", "F5", "C5", "G5"], 2)
    return take


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    for name, take in (("takeA", take_a()), ("takeB", take_b())):
        with open(f"{sys.argv[1]}/{name}.mid", "wb") as out:
            out.write(take.smf())
        print(f"{name}.mid: {take.beat * 60 / take.bpm:.1f} s at {take.bpm} BPM", file=sys.stderr)


if __name__ == "__main__":
    main()
