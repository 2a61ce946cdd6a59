//! Small deterministic profiles for tests and examples (any thread but the audio thread).

use anyhow::{ensure, Result};

use super::{KnobDescriptor, Profile, ProfileMeta, Weights, FORMAT_VERSION};
use crate::model::ModelConfig;

impl Profile {
    /// A small deterministic profile for tests and examples: the `architecture` preset at
    /// `size` with two knobs ("gain" 0..10, default 5; "level" -12..0 dB, default -6),
    /// 48 kHz, and weights from [`Weights::random`] with `seed` and scale 0.2. Not trained.
    pub fn fixture(architecture: &str, size: crate::model::Size, name: &str, seed: u64) -> Result<Self> {
        let model = ModelConfig::preset(architecture, size, 2)?;
        let weights = Weights::random(&model, seed, 0.2);
        let knob = |name: &str, min, max, default, unit: &str| KnobDescriptor {
            name: name.into(),
            min,
            max,
            default,
            unit: unit.into(),
        };
        let meta = fixture_meta(
            name.into(),
            model,
            vec![knob("gain", 0.0, 10.0, 5.0, ""), knob("level", -12.0, 0.0, -6.0, "dB")],
            0,
        );
        Profile::new(meta, weights)
    }

    /// A stereo-linked compressor for tests: knobs `threshold_db` (-40..0, default -30) and
    /// `ratio` (1..20, default 8) anchor its controls, so it compresses as they say; the rest
    /// of the map is zero (attack 10 ms, release 100 ms, 6 dB knee, no makeup) and the link
    /// weight 0 (the detector's input half mean, half louder channel). 48 kHz.
    pub fn linked_compressor_fixture(name: &str) -> Result<Self> {
        use crate::model::CompressorConfig;
        let knobs = vec![
            KnobDescriptor {
                name: "threshold_db".into(),
                min: -40.0,
                max: 0.0,
                default: -30.0,
                unit: "dB".into(),
            },
            KnobDescriptor {
                name: "ratio".into(),
                min: 1.0,
                max: 20.0,
                default: 8.0,
                unit: String::new(),
            },
        ];
        let mut config = CompressorConfig::preset(crate::model::Size::Nano, 2);
        config.channels = 2;
        let ranges: Vec<_> = knobs.iter().map(|k| (k.name.clone(), k.min, k.max)).collect();
        config.anchor_knobs(&ranges);
        let model = ModelConfig::Compressor(config);
        let mut weights = Weights::default();
        for (name, shape) in model.tensor_shapes() {
            let count = shape.iter().product();
            weights.insert(name, shape, vec![0.0; count]);
        }
        let meta = fixture_meta(name.into(), model, knobs, 0);
        Profile::new(meta, weights)
    }

    /// A WaveNet that plays its input `latency_samples` late through a tanh and reports that
    /// latency, for latency and delay-compensation tests: one layer whose only tap is
    /// `latency_samples` back, so `y[n] = tanh(x[n-L])`. For quiet input (|x| <= 0.01, -40
    /// dBFS) that is `x[n-L]` within 5e-7; louder input is soft-clipped. 48 kHz, no knobs.
    pub fn delay_fixture(latency_samples: u32) -> Result<Self> {
        use crate::model::{LayerArrayConfig, WavenetConfig};
        ensure!(
            latency_samples >= 1,
            "a delay fixture needs a latency of at least one sample"
        );
        let model = ModelConfig::Wavenet(WavenetConfig {
            num_knobs: 0,
            layer_arrays: vec![LayerArrayConfig {
                input_size: 1,
                condition_size: 1,
                channels: 1,
                head_size: 1,
                kernel_size: 2,
                dilations: vec![latency_samples as usize],
                gated: false,
                head_bias: false,
            }],
            head_scale: 1.0,
        });
        let mut weights = Weights::default();
        for (name, shape) in model.tensor_shapes() {
            let count = shape.iter().product();
            let mut data = vec![0.0; count];
            // Tap 0 of a kernel of 2 reads `dilation` samples back; the rest stays zero.
            if name.ends_with("rechannel.weight") || name.ends_with("conv.weight") {
                data[0] = 1.0;
            }
            weights.insert(name, shape, data);
        }
        let meta = fixture_meta(
            format!("{latency_samples}-sample delay"),
            model,
            Vec::new(),
            latency_samples,
        );
        Profile::new(meta, weights)
    }
}

/// The header of an untrained 48 kHz fixture.
fn fixture_meta(name: String, model: ModelConfig, knobs: Vec<KnobDescriptor>, latency_samples: u32) -> ProfileMeta {
    ProfileMeta {
        format_version: FORMAT_VERSION,
        name,
        notes: String::new(),
        model,
        sample_rate: 48_000,
        knobs,
        latency_samples,
        training: None,
        accuracy: None,
        calibration: None,
    }
}
