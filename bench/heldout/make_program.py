#!/usr/bin/env python3
"""bench/heldout/make_program.py: writes about a minute of band program material for compressors.

A General MIDI band at 110 BPM in A minor: drum kit (channel 10: kick, snare with ghost notes
and accents, closed, pedal and open hi-hat, toms, crashes), finger electric bass, electric
piano and a string pad. Sections are arranged so the level moves a lot, velocity 20..127:

  intro      4 bars  soft hi-hats and electric piano only (velocity 20..50)
  verse      6 bars  drums and bass at medium velocity (60..90), ghost notes, tom fill
  chorus     6 bars  everything, crashes, velocity 100..127
  breakdown  about 20 beats: single hits (kick, snare, tom, bass, a piano stab) with
             0.5..2 s of silence between them, soft and hard, to show a compressor's release
  final      4 bars  everything loud, snare build, then one last crash hit left ringing out

The section times are printed to stderr. Standard library only; the same seed writes the same
bytes. The file is type 1: a tempo track, then one track per instrument.

Usage: make_program.py OUT_DIR   (writes OUT_DIR/program.mid)
"""
import random
import struct
import sys

TICKS_PER_BEAT = 480
BEATS_PER_BAR = 4
BPM = 110
SEED = 31

# General MIDI programs, numbered 1..128 as in the GM table (the program change byte is n - 1).
ELECTRIC_PIANO = 5
FINGER_BASS = 34
STRINGS = 49
DRUM_CHANNEL = 9  # MIDI channel 10

# General MIDI percussion keys.
KICK = 36
SIDE_STICK = 37
SNARE = 38
LOW_FLOOR_TOM = 41
CLOSED_HAT = 42
HIGH_FLOOR_TOM = 43
PEDAL_HAT = 44
LOW_TOM = 45
OPEN_HAT = 46
MID_TOM = 47
HIGH_TOM = 50
CRASH = 49
CRASH_2 = 57

LOWEST_VELOCITY = 20

# A minor. Chords as MIDI notes: (bass root, keys voicing around middle C).
CHORDS = {
    "Am": (33, [57, 60, 64, 67]),   # Am7: A3 C4 E4 G4
    "F": (29, [57, 60, 64, 65]),    # Fmaj7: A3 C4 E4 F4
    "C": (36, [55, 60, 64, 67]),    # C: G3 C4 E4 G4
    "G": (31, [55, 59, 62, 67]),    # G: G3 B3 D4 G4
    "Dm": (38, [57, 60, 62, 65]),   # Dm7: A3 C4 D4 F4
    "E": (28, [56, 59, 62, 64]),    # E7: G#3 B3 D4 E4
}


def vlq(value):
    """A MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


class Song:
    """A multi-track General MIDI arrangement laid out section after section, in beats."""

    def __init__(self, bpm, seed):
        self.bpm = bpm
        self.rng = random.Random(seed)
        self.tracks = []  # (name, channel, program or None, events [(tick, order, bytes)])
        self.beat = 1.0  # one beat of silence first
        self.sections = []  # (name, start beat, end beat)

    def track(self, name, channel, program=None):
        """A new track on `channel`, set to `program` (GM 1..128; None for the drum kit), dry
        (reverb and chorus sends 0), full expression. Returns its index."""
        events = []
        if program is not None:
            events.append((0, 0, bytes([0xC0 | channel, program - 1])))
        for controller, value in ((7, 100), (10, 64), (11, 127), (91, 0), (93, 0)):
            events.append((0, 0, bytes([0xB0 | channel, controller, value])))
        self.tracks.append((name, channel, program, events))
        return len(self.tracks) - 1

    def _tick(self, beat, jitter):
        # A player's timing: a few milliseconds off the grid.
        offset = self.rng.uniform(-jitter, jitter) * self.bpm / 60.0 if jitter else 0.0
        return max(0, round((beat + offset) * TICKS_PER_BEAT))

    def note(self, track, beat, beats, pitch, velocity, jitter=0.004):
        """One note at `beat` (from the start of the song) lasting `beats`."""
        _, channel, _, events = self.tracks[track]
        velocity = round(velocity + self.rng.uniform(-4, 4))
        velocity = max(LOWEST_VELOCITY, min(127, velocity))
        on = self._tick(beat, jitter)
        off = max(on + 1, round((beat + beats) * TICKS_PER_BEAT))
        events.append((on, 2, bytes([0x90 | channel, pitch, velocity])))
        events.append((off, 1, bytes([0x80 | channel, pitch, 0])))

    def section(self, name, beats):
        """Marks `beats` from the cursor as section `name` and moves the cursor past it."""
        self.sections.append((name, self.beat, self.beat + beats))
        self.beat += beats

    def seconds(self, beat):
        return beat * 60.0 / self.bpm

    def smf(self, tail_seconds):
        """The song as a type-1 Standard MIDI File, `tail_seconds` of silence after the last
        note-off (for the last crash to ring out)."""
        last = max(t for _, _, _, events in self.tracks for t, _, _ in events)
        end = last + round(tail_seconds * self.bpm / 60.0 * TICKS_PER_BEAT)
        tempo = round(60_000_000 / self.bpm)
        conductor = [(0, 0, b"\xff\x03" + vlq(len(b"program")) + b"program"),
                     (0, 0, b"\xff\x51\x03" + tempo.to_bytes(3, "big")),
                     (0, 0, b"\xff\x58\x04\x04\x02\x18\x08")]  # 4/4
        for name, start, _ in self.sections:  # section names as markers
            conductor.append((round(start * TICKS_PER_BEAT), 0, b"\xff\x06" + vlq(len(name)) + name.encode()))
        chunks = [chunk(conductor, end)]
        for name, _, _, events in self.tracks:
            label = (0, -1, b"\xff\x03" + vlq(len(name)) + name.encode())
            chunks.append(chunk([label] + events, end))
        header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), TICKS_PER_BEAT)
        return header + b"".join(chunks)


def chunk(events, end):
    """One MTrk chunk of (tick, order, bytes) events, ending at tick `end`."""
    track = bytearray()
    now = 0
    for tick, _, data in sorted(events, key=lambda e: (e[0], e[1])):
        track += vlq(tick - now) + data
        now = tick
    track += vlq(max(0, end - now)) + b"\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


# --- parts: each writes `bars` bars from `start` (a beat) ---------------------------------------

def hats(song, drums, start, bars, low, high, open_every=0):
    """Closed hi-hat eighths, on-beats louder; an open hat on the last off-beat of every
    `open_every` bars (0: never), closed again by a pedal hat."""
    for bar in range(bars):
        for k in range(8):
            at = start + bar * BEATS_PER_BAR + k * 0.5
            if open_every and k == 7 and bar % open_every == open_every - 1:
                song.note(drums, at, 0.45, OPEN_HAT, high)
                song.note(drums, at + 0.5, 0.2, PEDAL_HAT, (low + high) / 2)
                continue
            song.note(drums, at, 0.2, CLOSED_HAT, high if k % 2 == 0 else low)


def groove(song, drums, start, bars, kick, snare, ghost, kicks=(0, 1.5, 2.0)):
    """Kick on `kicks` (beats within the bar), snare backbeat on 2 and 4 (velocity `snare`),
    and ghost notes (`ghost`: velocity, or 0 for none) on a few sixteenths."""
    rng = song.rng
    for bar in range(bars):
        at = start + bar * BEATS_PER_BAR
        for b in kicks:
            song.note(drums, at + b, 0.25, KICK, kick + (8 if b == 0 else 0))
        for b in (1, 3):
            song.note(drums, at + b, 0.25, SNARE, snare)
        if ghost:
            for b in (0.75, 1.75, 2.5, 3.25, 3.75):
                if rng.random() < 0.55:
                    song.note(drums, at + b, 0.1, SNARE, ghost)


def tom_fill(song, drums, at, low, high):
    """Sixteenths across the toms over two beats, a crescendo from `low` to `high`."""
    toms = [HIGH_TOM, HIGH_TOM, MID_TOM, MID_TOM, LOW_TOM, LOW_TOM, HIGH_FLOOR_TOM, LOW_FLOOR_TOM]
    for k, tom in enumerate(toms):
        song.note(drums, at + k * 0.25, 0.5, tom, low + (high - low) * k / (len(toms) - 1))


def bass_line(song, bass, start, progression, bars, low, high, busy):
    """Eighth notes on each bar's chord root: octave and fifth moves, the odd passing note,
    on-beats louder, some staccato. `busy` 0..1: how often it leaves the root."""
    rng = song.rng
    for bar in range(bars):
        root = CHORDS[progression[bar % len(progression)]][0]
        nxt = CHORDS[progression[(bar + 1) % len(progression)]][0]
        for k in range(8):
            at = start + bar * BEATS_PER_BAR + k * 0.5
            pitch = root
            if k in (3, 6) and rng.random() < busy:
                pitch = root + rng.choice([7, 12, 10])
            if k == 7 and rng.random() < busy:  # lead into the next chord
                pitch = nxt + (1 if nxt < root else -1)
            length = 0.22 if rng.random() < 0.3 else 0.46
            song.note(bass, at, length, pitch, high if k % 2 == 0 else low)


def chords(song, keys, start, progression, bars, velocity, rhythm):
    """Keys: each bar's voicing struck on `rhythm` (beats within the bar, with lengths),
    the notes rolled a few milliseconds apart, the top note a little softer."""
    for bar in range(bars):
        voicing = CHORDS[progression[bar % len(progression)]][1]
        for b, beats in rhythm:
            at = start + bar * BEATS_PER_BAR + b
            for i, pitch in enumerate(voicing):
                song.note(keys, at + i * 0.015, beats, pitch, velocity - 2 * i)


def pad(song, strings, start, progression, bars, velocity):
    """Strings: one whole-bar chord a bar, an octave up on the top note."""
    for bar in range(bars):
        voicing = CHORDS[progression[bar % len(progression)]][1]
        for pitch in voicing[:3] + [voicing[-1] + 12]:
            song.note(strings, start + bar * BEATS_PER_BAR, BEATS_PER_BAR - 0.05, pitch, velocity, jitter=0)


# --- the arrangement ---------------------------------------------------------------------------

def program():
    song = Song(BPM, SEED)
    drums = song.track("drums", DRUM_CHANNEL)
    bass = song.track("bass", 1, FINGER_BASS)
    keys = song.track("electric piano", 2, ELECTRIC_PIANO)
    strings = song.track("strings", 3, STRINGS)

    # Intro: soft closed hats and electric piano, nothing else.
    start, bars = song.beat, 4
    hats(song, drums, start, bars, 20, 38)
    chords(song, keys, start, ["Am", "F", "Am", "G"], bars, 48, [(0, 1.9), (2.5, 1.4)])
    song.section("intro", bars * BEATS_PER_BAR)

    # Verse: drums and bass, medium, ghost notes; a tom fill into the chorus.
    start, bars = song.beat, 6
    hats(song, drums, start, bars, 48, 68, open_every=2)
    groove(song, drums, start, bars - 1, kick=72, snare=82, ghost=28)
    at = start + (bars - 1) * BEATS_PER_BAR
    song.note(drums, at, 0.25, KICK, 78)
    song.note(drums, at + 1, 0.25, SNARE, 84)
    tom_fill(song, drums, at + 2, 70, 105)
    bass_line(song, bass, start, ["Am", "Am", "F", "G", "Am", "E"], bars, 64, 80, busy=0.4)
    song.section("verse", bars * BEATS_PER_BAR)

    # Chorus: everything, loud; crashes every two bars, open hats, busier kick.
    start, bars = song.beat, 6
    progression = ["F", "G", "Am", "Am", "F", "G"]
    for bar in range(0, bars, 2):
        song.note(drums, start + bar * BEATS_PER_BAR, 3.0, CRASH if bar % 4 == 0 else CRASH_2, 124)
    hats(song, drums, start, bars, 92, 112, open_every=1)
    groove(song, drums, start, bars - 1, kick=112, snare=120, ghost=40, kicks=(0, 0.5, 1.5, 2.0, 2.5))
    at = start + (bars - 1) * BEATS_PER_BAR  # last bar: hits on 1 and 2, then a stop
    for b, velocity in ((0, 127), (1.0, 124), (1.5, 127)):
        song.note(drums, at + b, 0.25, KICK, velocity)
        song.note(drums, at + b, 0.25, SNARE, velocity)
    bass_line(song, bass, start, progression, bars - 1, 100, 118, busy=0.6)
    for b in (0, 1.0, 1.5):
        song.note(bass, at + b, 0.3, CHORDS["E"][0], 122)
    chords(song, keys, start, progression, bars - 1, 108, [(0, 0.9), (1, 0.4), (1.5, 0.9), (2.5, 0.4), (3, 0.9)])
    chords(song, keys, at, ["E"], 1, 118, [(0, 0.3), (1.0, 0.3), (1.5, 0.3)])
    pad(song, strings, start, progression, bars - 1, 100)
    song.section("chorus", bars * BEATS_PER_BAR)

    # Breakdown: single short hits, soft and hard, each followed by silence. The gaps are
    # onset to onset, in beats (0.545 s at 110 BPM); the hits die away within about 0.3 s.
    start = song.beat
    hits = [  # (beats after the previous hit, what, velocity)
        (0.0, "kick", 110), (2.0, "snare", 90), (3.5, "stick", 60), (2.0, "kick+bass", 127),
        (4.0, "snare", 127), (1.5, "snare", 35), (3.0, "stab", 75), (2.5, "kick", 50),
        (1.5, "snare", 118),
    ]
    at = start
    for gap, what, velocity in hits:
        at += gap
        if what.startswith("kick"):
            song.note(drums, at, 0.2, KICK, velocity)
        if what.endswith("bass"):
            song.note(bass, at, 0.25, CHORDS["Am"][0], velocity - 5)
        if what == "snare":
            song.note(drums, at, 0.2, SNARE, velocity)
        if what == "stick":
            song.note(drums, at, 0.2, SIDE_STICK, velocity)
        if what == "stab":
            for i, pitch in enumerate(CHORDS["Dm"][1]):
                song.note(keys, at + i * 0.01, 0.2, pitch, velocity)
    song.section("breakdown", at - start + 3.0)

    # Final: everything, loudest; a snare build in the last bar, then one crash left ringing.
    start, bars = song.beat, 4
    progression = ["Am", "F", "G", "E"]
    song.note(drums, start, 3.0, CRASH, 127)
    song.note(drums, start + 2 * BEATS_PER_BAR, 3.0, CRASH_2, 124)
    hats(song, drums, start, bars - 1, 100, 118, open_every=1)
    groove(song, drums, start, bars - 1, kick=116, snare=124, ghost=45, kicks=(0, 0.5, 1.5, 2.0, 2.5))
    at = start + (bars - 1) * BEATS_PER_BAR
    for k in range(16):  # snare sixteenths, 80 up to 127, kick on the beats
        song.note(drums, at + k * 0.25, 0.1, SNARE, 80 + 47 * k / 15)
        if k % 4 == 0:
            song.note(drums, at + k * 0.25, 0.2, KICK, 110)
    bass_line(song, bass, start, progression, bars, 108, 124, busy=0.5)
    chords(song, keys, start, progression, bars, 114, [(0, 0.9), (1, 0.4), (1.5, 0.9), (2.5, 0.4), (3, 0.9)])
    pad(song, strings, start, progression, bars, 110)
    song.section("final", bars * BEATS_PER_BAR)

    # The last hit: crash, kick, bass and a short chord together; only the crash rings on.
    end = song.beat
    song.note(drums, end, 12.0, CRASH, 127, jitter=0)
    song.note(drums, end, 0.3, KICK, 127, jitter=0)
    song.note(bass, end, 0.5, CHORDS["Am"][0], 124, jitter=0)
    for pitch in CHORDS["Am"][1]:
        song.note(keys, end, 0.5, pitch, 118, jitter=0)
    song.section("ring-out", 12.0)
    return song


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    song = program()
    with open(f"{sys.argv[1]}/program.mid", "wb") as out:
        out.write(song.smf(tail_seconds=0.5))
    for name, start, end in song.sections:
        print(f"{name}: {song.seconds(start):.1f}..{song.seconds(end):.1f} s", file=sys.stderr)
    print(f"program.mid: {song.seconds(song.beat) + 0.5:.1f} s at {song.bpm} BPM", file=sys.stderr)


if __name__ == "__main__":
    main()
