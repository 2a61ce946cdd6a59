//! Capture plans: which knob settings to capture so that a knob-conditioned profile sees each
//! knob's effect, and how the knobs act together, from a handful of captures. The plugin's
//! capture flow proposes them one after another; `bench/compressor.sh`'s grid8 is the plan for
//! four knobs. Any thread (the plugin's trainer thread computes it, the editor shows it).
//!
//! Two-level designs over each knob's range, at most [`MAX_PLAN_SETTINGS`] settings:
//! - one knob: its centre, then both ends;
//! - two knobs: the centre, then the four corners;
//! - three knobs: all eight corners (a compressor's knobs interact strongly: a fraction
//!   would confound one knob with the other two's interaction);
//! - four knobs: a half fraction of the sixteen corners (the fourth knob's end is the product
//!   of the other three's): eight settings, each knob at both ends four times, every knob's
//!   own effect clear of the two-knob interactions.
//!
//! The centre of a knob whose meaning is a ratio or a time (`ratio`, names ending in `_ms`,
//! `attack`, `release`) is the geometric mean of its ends, where the ear and the model both
//! work in logarithms; any other knob's is the midpoint.

/// Most settings a plan proposes.
pub const MAX_PLAN_SETTINGS: usize = 8;

/// Fraction of a knob's range within which a captured value counts as the planned one.
const MATCH_FRACTION: f32 = 0.02;

/// A knob to plan for, in its own units.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanKnob {
    /// The knob's name (its meaning picks its centre).
    pub name: String,
    /// Lowest value.
    pub min: f32,
    /// Highest value.
    pub max: f32,
}

impl PlanKnob {
    fn is_logarithmic(&self) -> bool {
        let name = self.name.to_ascii_lowercase();
        let named = name == "ratio" || name.ends_with("_ms") || name == "attack" || name == "release";
        named && self.min > 0.0 && self.max > 0.0
    }

    fn centre(&self) -> f32 {
        if self.is_logarithmic() {
            (self.min * self.max).sqrt()
        } else {
            0.5 * (self.min + self.max)
        }
    }

    /// The knob's low (`false`) or high (`true`) end.
    fn end(&self, high: bool) -> f32 {
        if high {
            self.max
        } else {
            self.min
        }
    }
}

/// The settings to capture for `knobs` (at most 4), each in the knobs' order and units, in
/// the order to capture them. No knobs: one setting with none.
pub fn capture_plan(knobs: &[PlanKnob]) -> Vec<Vec<f32>> {
    let centre: Vec<f32> = knobs.iter().map(PlanKnob::centre).collect();
    // Corners as sign patterns: bit i set means knob i at its high end.
    assert!(
        knobs.len() <= 4,
        "capture plans cover at most 4 knobs, not {}",
        knobs.len()
    );
    let corners: Vec<u32> = match knobs.len() {
        0 => return vec![Vec::new()],
        1 => vec![0b0, 0b1],
        2 => (0..4).collect(),
        3 => (0..8).collect(),
        // The last knob's end is the product of the others' (high when an odd number of
        // them is high).
        _ => (0..8)
            .map(|abc: u32| abc | (u32::from(!abc.count_ones().is_multiple_of(2)) << 3))
            .collect(),
    };
    let mut plan = Vec::new();
    if knobs.len() < 3 {
        plan.push(centre);
    }
    for corner in corners {
        plan.push(
            knobs
                .iter()
                .enumerate()
                .map(|(i, k)| k.end(corner & (1 << i) != 0))
                .collect(),
        );
    }
    plan.truncate(MAX_PLAN_SETTINGS);
    plan
}

/// Per setting of `plan`: whether a setting in `captured` (same knob order) matches it,
/// within 2 % of each knob's range.
pub fn plan_progress(knobs: &[PlanKnob], plan: &[Vec<f32>], captured: &[Vec<f32>]) -> Vec<bool> {
    let matches = |planned: &[f32], got: &[f32]| {
        got.len() == planned.len()
            && knobs.iter().zip(planned.iter().zip(got)).all(|(knob, (p, g))| {
                let tolerance = MATCH_FRACTION * (knob.max - knob.min).abs();
                (p - g).abs() <= tolerance
            })
    };
    plan.iter()
        .map(|planned| captured.iter().any(|got| matches(planned, got)))
        .collect()
}

/// The first setting of `plan` not yet captured (see [`plan_progress`]), as an index into
/// `plan`; `None` once every planned setting has been captured.
pub fn next_in_plan(knobs: &[PlanKnob], plan: &[Vec<f32>], captured: &[Vec<f32>]) -> Option<usize> {
    plan_progress(knobs, plan, captured).iter().position(|done| !done)
}

/// One planned setting as text: `threshold_db -36, ratio 10`. Each value has the decimals
/// its knob needs for the shown number to count as the planned one (see [`plan_progress`]).
pub fn describe_setting(knobs: &[PlanKnob], setting: &[f32]) -> String {
    knobs
        .iter()
        .zip(setting)
        .map(|(knob, value)| {
            let tolerance = (MATCH_FRACTION * (knob.max - knob.min).abs()).max(1e-6);
            let decimals = (-tolerance.log10()).ceil().clamp(0.0, 6.0) as usize;
            let text = format!("{value:.decimals$}");
            let text = if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_owned()
            } else {
                text
            };
            format!("{} {text}", knob.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knob(name: &str, min: f32, max: f32) -> PlanKnob {
        PlanKnob {
            name: name.into(),
            min,
            max,
        }
    }

    fn compressor_knobs() -> Vec<PlanKnob> {
        vec![
            knob("threshold_db", -36.0, -12.0),
            knob("ratio", 2.0, 10.0),
            knob("attack_ms", 2.0, 30.0),
            knob("release_ms", 50.0, 2000.0),
        ]
    }

    #[test]
    fn four_knobs_get_the_half_fraction_of_their_corners() {
        let knobs = compressor_knobs();
        let plan = capture_plan(&knobs);
        assert_eq!(plan.len(), 8);
        // Every knob at each end four times; every pair of knobs in all four combinations
        // twice (main effects and two-knob interactions kept apart).
        for i in 0..4 {
            let high = plan.iter().filter(|s| s[i] == knobs[i].max).count();
            assert_eq!(high, 4, "knob {i}");
            for j in i + 1..4 {
                for (hi, hj) in [(false, false), (false, true), (true, false), (true, true)] {
                    let count = plan
                        .iter()
                        .filter(|s| (s[i] == knobs[i].max) == hi && (s[j] == knobs[j].max) == hj)
                        .count();
                    assert_eq!(count, 2, "knobs {i}, {j}");
                }
            }
        }
        // The release end is the product of the other three (as bench/compressor.sh's grid8).
        for s in &plan {
            let highs = (0..3).filter(|&i| s[i] == knobs[i].max).count();
            assert_eq!(s[3] == 2000.0, highs % 2 == 1, "{s:?}");
        }
    }

    #[test]
    fn one_or_two_knobs_start_at_a_centre_that_follows_the_knobs_meaning() {
        let plan = capture_plan(&[knob("ratio", 2.0, 8.0), knob("threshold_db", -40.0, -20.0)]);
        assert_eq!(plan.len(), 5);
        assert_eq!(plan[0], vec![4.0, -30.0], "ratio's centre is geometric");
        let three = capture_plan(&compressor_knobs()[..3]);
        assert_eq!(three.len(), 8, "three knobs: every corner");
        for i in 0..3 {
            assert_eq!(three.iter().filter(|s| s[i] == compressor_knobs()[i].max).count(), 4);
        }
        assert_eq!(
            capture_plan(&[knob("gain", 0.0, 10.0)]),
            vec![vec![5.0], vec![0.0], vec![10.0]]
        );
        assert_eq!(capture_plan(&[]), vec![Vec::<f32>::new()]);
    }

    #[test]
    fn the_next_setting_is_the_first_not_yet_captured() {
        let knobs = vec![knob("gain", 0.0, 10.0)];
        let plan = capture_plan(&knobs);
        assert_eq!(next_in_plan(&knobs, &plan, &[]), Some(0));
        // Within 2 % of the range counts as captured.
        assert_eq!(next_in_plan(&knobs, &plan, &[vec![5.1]]), Some(1));
        assert_eq!(
            next_in_plan(&knobs, &plan, &[vec![5.0], vec![10.0], vec![3.0]]),
            Some(1)
        );
        assert_eq!(next_in_plan(&knobs, &plan, &[vec![0.0], vec![5.0], vec![10.0]]), None);
        assert_eq!(
            describe_setting(&compressor_knobs(), &[-36.0, 2.5, 30.0, 1200.0]),
            "threshold_db -36, ratio 2.5, attack_ms 30, release_ms 1200"
        );
        // A shown value always counts as the planned one: a narrow knob gets its decimals.
        let narrow = vec![knob("release_ms", 10.0, 15.0)];
        let plan = capture_plan(&narrow);
        let text = describe_setting(&narrow, &plan[0]);
        let shown: f32 = text["release_ms ".len()..].parse().unwrap();
        assert_eq!(next_in_plan(&narrow, &plan, &[vec![shown]]), Some(1), "{text}");
    }
}
