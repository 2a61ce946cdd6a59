"""NAM's classic ("A1") WaveNet size presets, written for the installed `nam` package.

The `neural-amp-modeler` trainer up to 0.12 offered four WaveNet sizes (standard, lite,
feather, nano). Since 0.13 its simplified trainer trains a packed "A2" model instead and the
size menu is gone, but the four shapes are still what NAM users, NAM's core benchmarks and
Doppel's `--size` presets mean. This module states those shapes as facts:

* two layer arrays, kernel size 3, tanh, no gating, head scale 0.02;
* standard: 16 then 8 channels, dilations 1..512 in both arrays;
* lite / feather / nano: 12/6, 8/4 and 4/2 channels, dilations 1..64 in the first array
  and 128, 256, 512, 1..512 in the second.

The head of each array is a 1x1 convolution to the next array's channel count (to one
channel for the last array, with a bias only there), matching Doppel's
`engine/src/model/wavenet.rs` presets. The config dictionaries use the layer-array schema of
`nam` >= 0.13 (`head: {out_channels, kernel_size, bias}`).
"""

SIZES = ("standard", "lite", "feather", "nano")

# (first array channels, second array channels) per size.
_CHANNELS = {
    "standard": (16, 8),
    "lite": (12, 6),
    "feather": (8, 4),
    "nano": (4, 2),
}


def _powers_of_two(first_exponent: int, last_exponent: int) -> list:
    return [2**e for e in range(first_exponent, last_exponent + 1)]


def dilations(size: str) -> tuple:
    """The two layer arrays' dilation lists for `size`."""
    if size == "standard":
        return _powers_of_two(0, 9), _powers_of_two(0, 9)
    return _powers_of_two(0, 6), _powers_of_two(7, 9) + _powers_of_two(0, 9)


def wavenet_config(size: str) -> dict:
    """The `nam.models.wavenet.WaveNet` config (the "config" of a "net") for `size`."""
    if size not in _CHANNELS:
        raise ValueError(f"unknown size '{size}' (expected one of {', '.join(SIZES)})")
    channels_a, channels_b = _CHANNELS[size]
    dilations_a, dilations_b = dilations(size)
    return {
        "layers_configs": [
            {
                "input_size": 1,
                "condition_size": 1,
                "channels": channels_a,
                "head": {"out_channels": channels_b, "kernel_size": 1, "bias": False},
                "kernel_size": 3,
                "dilations": dilations_a,
                "activation": "Tanh",
            },
            {
                "input_size": channels_a,
                "condition_size": 1,
                "channels": channels_b,
                "head": {"out_channels": 1, "kernel_size": 1, "bias": True},
                "kernel_size": 3,
                "dilations": dilations_b,
                "activation": "Tanh",
            },
        ],
        "head_scale": 0.02,
    }


def parameter_count(size: str) -> int:
    """Trainable parameters of the `size` WaveNet (conv, input mixer, 1x1 and heads)."""
    total = 0
    for array in wavenet_config(size)["layers_configs"]:
        c = array["channels"]
        k = array["kernel_size"]
        layers = len(array["dilations"])
        total += array["input_size"] * c  # rechannel, no bias
        # per layer: dilated conv (with bias), input mixer (no bias), 1x1 (with bias)
        total += layers * (c * c * k + c + array["condition_size"] * c + c * c + c)
        head = array["head"]
        total += c * head["out_channels"] + (head["out_channels"] if head["bias"] else 0)
    return total
