//! Verifiable tasks: problem generators with exact verifiers and difficulty levels, binary
//! correctness reward with an optional format reward, fixed train/test splits by seed, and
//! the unbiased pass@k estimator (Chen et al. 2021, "Evaluating Large Language Models
//! Trained on Code", eq. 1).
//!
//! | task | prompt | reference answer | difficulty |
//! |---|---|---|---|
//! | addition | `37+485=` | `522` | digits per operand |
//! | multiplication | `37*48=` | `1776` | digits per operand |
//! | countdown | `3,5,7:22=` | `3*5+7` | how many numbers (2 + level) |
//! | linear | `3x+5=17:x=` | `4` | coefficient range |
//!
//! The completion is the text the policy writes after the prompt (up to its end-of-sequence
//! token). It is *well formed* when it parses (a signed integer, or an expression for
//! countdown) and *correct* when the verifier accepts it exactly.

pub mod expr;

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{AlignError, Result, invalid};
use expr::{eval_expression, parse_int};

/// Which generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// `a+b=` with `difficulty`-digit operands.
    Addition,
    /// `a*b=` with `difficulty`-digit operands.
    Multiplication,
    /// Reach the target from `difficulty + 1` numbers with `+ - * /`, each number at most once.
    Countdown,
    /// `ax+b=c` over the integers, solve for x; coefficients grow with `difficulty`.
    Linear,
}

impl TaskKind {
    /// Parses a task name (`addition`, `multiplication`, `countdown`, `linear`).
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "addition" => Self::Addition,
            "multiplication" => Self::Multiplication,
            "countdown" => Self::Countdown,
            "linear" => Self::Linear,
            _ => {
                return Err(AlignError::UnknownTask {
                    name: name.to_string(),
                });
            }
        })
    }
}

/// A task family and its difficulty level (1 = easiest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The generator.
    pub kind: TaskKind,
    /// Difficulty level, 1..=6.
    pub difficulty: u32,
}

/// What the verifier needs to check an answer exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Instance {
    /// The answer is this integer.
    Integer(i64),
    /// The answer is an expression over a sub-multiset of `numbers` equal to `target`.
    Countdown {
        /// The numbers offered.
        numbers: Vec<i64>,
        /// The target value.
        target: i64,
    },
}

/// One generated problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The text given to the policy.
    pub prompt: String,
    /// A reference answer the verifier accepts.
    pub answer: String,
    /// What the verifier checks.
    pub instance: Instance,
}

/// The last maximal run of digits in `s`, with its minus sign when one precedes it.
fn last_integer(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let end = b.iter().rposition(u8::is_ascii_digit)? + 1;
    let mut start = end;
    while start > 0 && b[start - 1].is_ascii_digit() {
        start -= 1;
    }
    if start > 0 && b[start - 1] == b'-' {
        start -= 1;
    }
    Some(s[start..end].to_string())
}

/// The verifier's judgement of a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The completion parses as an answer of the expected shape.
    pub well_formed: bool,
    /// The answer is exactly right.
    pub correct: bool,
}

impl Problem {
    /// The answer a free-form completion states (a pretrained model writes prose, not just
    /// the answer): the content of the last `\boxed{..}` if there is one, otherwise the last
    /// non-empty line without an "answer:" / "the answer is" lead-in, spaces and trailing
    /// periods dropped. Of an integer answer, the last integer right of the last `=` ("the
    /// sum is 522", "37 + 485 = 522"); of countdown's expression, the run of expression
    /// characters left of the last `=` ("so: 3*5+7 = 22"). [`Problem::verify`] then judges
    /// it exactly.
    pub fn extract_answer(&self, text: &str) -> String {
        let boxed = text.rfind("\\boxed{").and_then(|at| {
            let rest = &text[at + "\\boxed{".len()..];
            rest.find('}').map(|end| rest[..end].to_string())
        });
        let mut s = boxed.unwrap_or_else(|| {
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string()
        });
        let lower = s.to_lowercase();
        for lead in ["the answer is", "answer:", "answer is"] {
            if let Some(at) = lower.rfind(lead) {
                s = s[at + lead.len()..].to_string();
                break;
            }
        }
        let mut s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        while s.ends_with('.') {
            s.pop();
        }
        match self.instance {
            Instance::Integer(_) => {
                if let Some(at) = s.rfind('=') {
                    s = s[at + 1..].to_string();
                }
                last_integer(&s).unwrap_or(s)
            }
            Instance::Countdown { .. } => {
                if let Some(at) = s.rfind('=') {
                    s.truncate(at);
                }
                // The expression is the trailing run of expression characters.
                let start = s
                    .rfind(|c: char| !(c.is_ascii_digit() || "+-*/()".contains(c)))
                    .map_or(0, |i| i + 1);
                s[start..].to_string()
            }
        }
    }

    /// Checks a completion (the text after the prompt, without the end token).
    pub fn verify(&self, completion: &str) -> Verdict {
        match &self.instance {
            Instance::Integer(x) => {
                let parsed = parse_int(completion);
                Verdict {
                    well_formed: parsed.is_some(),
                    correct: parsed == Some(*x),
                }
            }
            Instance::Countdown { numbers, target } => match eval_expression(completion) {
                None => Verdict {
                    well_formed: false,
                    correct: false,
                },
                Some(e) => {
                    let mut pool = numbers.clone();
                    let uses_offered = e.numbers.iter().all(|n| {
                        pool.iter()
                            .position(|m| m == n)
                            .map(|i| pool.swap_remove(i))
                            .is_some()
                    });
                    Verdict {
                        well_formed: true,
                        correct: uses_offered && e.value.as_int() == Some(*target),
                    }
                }
            },
        }
    }
}

/// Reward of a verdict: `correct` or `wrong`, plus `format_bonus` for a well-formed answer
/// (0 disables the format reward).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardConfig {
    /// Reward of a correct answer.
    pub correct: f64,
    /// Reward of a wrong answer (DAPO uses -1).
    pub wrong: f64,
    /// Added when the answer is well formed.
    pub format_bonus: f64,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            correct: 1.0,
            wrong: 0.0,
            format_bonus: 0.0,
        }
    }
}

impl RewardConfig {
    /// The scalar reward of a verdict.
    pub fn reward(&self, v: Verdict) -> f64 {
        let base = if v.correct { self.correct } else { self.wrong };
        base + if v.well_formed {
            self.format_bonus
        } else {
            0.0
        }
    }

    /// Checks that every value is finite and `correct > wrong`.
    pub fn validate(&self) -> Result<()> {
        for (k, v) in [
            ("reward.correct", self.correct),
            ("reward.wrong", self.wrong),
            ("reward.format_bonus", self.format_bonus),
        ] {
            if !v.is_finite() {
                return Err(invalid(k, v, "must be finite"));
            }
        }
        if self.correct <= self.wrong {
            return Err(invalid(
                "reward.correct",
                self.correct,
                "must exceed reward.wrong",
            ));
        }
        Ok(())
    }
}

fn digits_range(d: u32) -> (i64, i64) {
    let lo = if d <= 1 { 0 } else { 10i64.pow(d - 1) };
    (lo, 10i64.pow(d) - 1)
}

impl TaskSpec {
    /// A spec, checking the difficulty range (`difficulty` must lie in 1..=6).
    pub fn new(kind: TaskKind, difficulty: u32) -> Result<Self> {
        let s = Self { kind, difficulty };
        s.validate()?;
        Ok(s)
    }

    /// Checks the difficulty range, naming the key.
    pub fn validate(&self) -> Result<()> {
        if !(1..=6).contains(&self.difficulty) {
            return Err(invalid(
                "task.difficulty",
                self.difficulty,
                "must lie in 1..=6",
            ));
        }
        Ok(())
    }

    /// Draws one problem.
    pub fn generate(&self, rng: &mut StdRng) -> Problem {
        let d = self.difficulty.clamp(1, 6);
        match self.kind {
            TaskKind::Addition | TaskKind::Multiplication => {
                let (lo, hi) = digits_range(d);
                let a = rng.random_range(lo..=hi);
                let b = rng.random_range(lo..=hi);
                let (op, x) = if self.kind == TaskKind::Addition {
                    ('+', a + b)
                } else {
                    ('*', a * b)
                };
                Problem {
                    prompt: format!("{a}{op}{b}="),
                    answer: x.to_string(),
                    instance: Instance::Integer(x),
                }
            }
            TaskKind::Linear => {
                let range = 2 + 3 * i64::from(d);
                let a = loop {
                    let a = rng.random_range(-range..=range);
                    if a != 0 {
                        break a;
                    }
                };
                let x = rng.random_range(-range..=range);
                let b = rng.random_range(-range * range..=range * range);
                let c = a * x + b;
                let sign = if b < 0 { '-' } else { '+' };
                Problem {
                    prompt: format!("{a}x{sign}{}={c}:x=", b.abs()),
                    answer: x.to_string(),
                    instance: Instance::Integer(x),
                }
            }
            TaskKind::Countdown => countdown(d as usize + 1, rng),
        }
    }
}

/// A countdown problem with `n` numbers in 1..=12 whose target is reached by combining all
/// of them left to right in a random order (subtraction only when non-negative, division
/// only when exact), so the problem is solvable by construction; the fold is the reference.
fn countdown(n: usize, rng: &mut StdRng) -> Problem {
    loop {
        let numbers: Vec<i64> = (0..n).map(|_| rng.random_range(1..=12)).collect();
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let mut value = numbers[order[0]];
        let mut text = value.to_string();
        let mut last_additive = false;
        for &i in &order[1..] {
            let m = numbers[i];
            let mut ops = vec![b'+', b'*'];
            if value - m >= 0 {
                ops.push(b'-');
            }
            if value % m == 0 {
                ops.push(b'/');
            }
            let op = ops[rng.random_range(0..ops.len())];
            if matches!(op, b'*' | b'/') && last_additive {
                text = format!("({text})");
            }
            text.push(op as char);
            text.push_str(&m.to_string());
            value = match op {
                b'+' => value + m,
                b'-' => value - m,
                b'*' => value * m,
                _ => value / m,
            };
            last_additive = matches!(op, b'+' | b'-');
        }
        if value < 1 {
            continue;
        }
        let list: Vec<String> = numbers.iter().map(ToString::to_string).collect();
        return Problem {
            prompt: format!("{}:{value}=", list.join(",")),
            answer: text,
            instance: Instance::Countdown {
                numbers,
                target: value,
            },
        };
    }
}

/// Fixed, disjoint train and test sets of a task, drawn from a seed: the same seed always
/// gives the same problems, and no test prompt occurs in the train set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSplits {
    /// The task.
    pub spec: TaskSpec,
    /// The seed the sets were drawn with.
    pub seed: u64,
    /// Training problems.
    pub train: Vec<Problem>,
    /// Held-out problems.
    pub test: Vec<Problem>,
}

impl TaskSplits {
    /// Draws the test set first (so it does not change with `n_train`), then train problems
    /// whose prompts are not in the test set. Small problem spaces (1-digit addition has
    /// 100 prompts) may end up with fewer distinct problems than asked: the loop stops
    /// after `20 * (n_train + n_test)` draws.
    pub fn new(spec: TaskSpec, seed: u64, n_train: usize, n_test: usize) -> Result<Self> {
        spec.validate()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let budget = 20 * (n_train + n_test) + 100;
        let mut seen = HashSet::new();
        let mut test = Vec::with_capacity(n_test);
        let mut draws = 0;
        while test.len() < n_test && draws < budget {
            draws += 1;
            let p = spec.generate(&mut rng);
            if seen.insert(p.prompt.clone()) {
                test.push(p);
            }
        }
        let mut train = Vec::with_capacity(n_train);
        while train.len() < n_train && draws < 2 * budget {
            draws += 1;
            let p = spec.generate(&mut rng);
            if !seen.contains(&p.prompt) {
                train.push(p);
            }
        }
        Ok(Self {
            spec,
            seed,
            train,
            test,
        })
    }
}

/// The unbiased pass@k estimator from `n` samples of which `c` are correct:
/// `1 - C(n-c, k) / C(n, k)` (Chen et al. 2021, eq. 1), computed as the stable product
/// `1 - prod_{i=n-c+1}^{n} (1 - k/i)`. Requires `k <= n`; returns `None` otherwise.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || k > n || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let prod: f64 = ((n - c + 1)..=n)
        .map(|i| 1.0 - k as f64 / i as f64)
        .product();
    Some(1.0 - prod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kinds() -> impl Strategy<Value = TaskKind> {
        prop_oneof![
            Just(TaskKind::Addition),
            Just(TaskKind::Multiplication),
            Just(TaskKind::Countdown),
            Just(TaskKind::Linear),
        ]
    }

    #[test]
    fn answers_are_extracted_from_prose() {
        let p = Problem {
            prompt: "37+485=".into(),
            answer: "522".into(),
            instance: Instance::Integer(522),
        };
        for text in [
            "522",
            "37 + 485 = 522.",
            "Let me add.\nThe answer is 522.",
            "Answer: 522",
            "so the sum is \\boxed{522} indeed",
            "The sum is 522.",
        ] {
            assert_eq!(p.extract_answer(text), "522", "{text:?}");
        }
        assert!(!p.verify(&p.extract_answer("37 + 485 = 521")).correct);
        assert_eq!(p.extract_answer(""), "");
    }

    #[test]
    fn known_problems() {
        let p = Problem {
            prompt: "3,5,7:22=".into(),
            answer: "3*5+7".into(),
            instance: Instance::Countdown {
                numbers: vec![3, 5, 7],
                target: 22,
            },
        };
        assert!(
            p.verify(&p.extract_answer("We can do it: 3 * 5 + 7 = 22."))
                .correct
        );
        assert!(p.verify(&p.extract_answer("so \\boxed{7+5*3}")).correct);
        assert!(p.verify("3*5+7").correct);
        assert!(p.verify("7+5*3").correct);
        assert!(!p.verify("3*5+7+0").correct, "0 is not offered");
        assert!(!p.verify("3*5+7*1").correct);
        assert!(!p.verify("7+7+5+3").correct, "7 used twice");
        assert!(!p.verify("3*5+7=").well_formed);
        assert!(p.verify("3+5").well_formed && !p.verify("3+5").correct);
    }

    #[test]
    fn pass_at_k_known_answers() {
        // n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 1 - 3/10.
        assert!((pass_at_k(5, 2, 2).unwrap() - 0.7).abs() < 1e-12);
        assert!((pass_at_k(10, 3, 1).unwrap() - 0.3).abs() < 1e-12);
        assert_eq!(pass_at_k(4, 0, 2), Some(0.0));
        assert_eq!(pass_at_k(4, 3, 2), Some(1.0));
        assert_eq!(pass_at_k(2, 1, 3), None);
        // n = 20, c = 4, k = 5: 1 - C(16,5)/C(20,5) = 1 - 4368/15504.
        assert!((pass_at_k(20, 4, 5).unwrap() - (1.0 - 4368.0 / 15504.0)).abs() < 1e-12);
    }

    #[test]
    fn splits_are_fixed_and_disjoint() {
        let spec = TaskSpec::new(TaskKind::Addition, 2).unwrap();
        let a = TaskSplits::new(spec, 7, 200, 50).unwrap();
        let b = TaskSplits::new(spec, 7, 300, 50).unwrap();
        assert_eq!(a.test, b.test, "test set does not depend on n_train");
        assert_eq!(a.train[..], b.train[..200]);
        let test: HashSet<_> = a.test.iter().map(|p| &p.prompt).collect();
        assert!(a.train.iter().all(|p| !test.contains(&p.prompt)));
        assert_ne!(a.test, TaskSplits::new(spec, 8, 0, 50).unwrap().test);
    }

    #[test]
    fn bad_specs_rejected() {
        let e = TaskSpec::new(TaskKind::Linear, 0).unwrap_err().to_string();
        assert!(e.contains("task.difficulty"), "{e}");
        let e = TaskKind::parse("sudoku").unwrap_err().to_string();
        assert!(e.contains("sudoku"), "{e}");
    }

    proptest! {
        #[test]
        fn reference_answers_verify_and_perturbations_fail(
            kind in kinds(), difficulty in 1u32..=6, seed in any::<u64>(), delta in 1i64..1000,
        ) {
            let spec = TaskSpec::new(kind, difficulty).unwrap();
            let p = spec.generate(&mut StdRng::seed_from_u64(seed));
            prop_assert!(p.verify(&p.answer).correct, "{:?}", p);
            match &p.instance {
                Instance::Integer(x) => {
                    prop_assert!(!p.verify(&(x + delta).to_string()).correct);
                    prop_assert!(!p.verify(&(x - delta).to_string()).correct);
                    let times_ten = format!("{}0", p.answer);
                    prop_assert!(!p.verify(&times_ten).correct || *x == 0);
                }
                Instance::Countdown { numbers, target } => {
                    prop_assert_eq!(numbers.len(), difficulty as usize + 1);
                    prop_assert!(*target >= 1);
                    let shifted = format!("({})+{}", p.answer, delta);
                    prop_assert!(!p.verify(&shifted).correct || numbers.contains(&delta));
                    let doubled = format!("{}+{}", p.answer, p.answer);
                    prop_assert!(!p.verify(&doubled).correct, "reusing every number twice");
                }
            }
        }

        #[test]
        fn verifier_never_panics(kind in kinds(), seed in any::<u64>(), s in "\\PC{0,40}") {
            let p = TaskSpec::new(kind, 3).unwrap().generate(&mut StdRng::seed_from_u64(seed));
            let v = p.verify(&s);
            prop_assert!(!v.correct || v.well_formed);
        }

        #[test]
        fn pass_at_k_is_monotone_in_k_and_c(n in 1usize..40, c in 0usize..40, k in 1usize..40) {
            prop_assume!(c <= n && k < n);
            let p = pass_at_k(n, c, k).unwrap();
            prop_assert!((0.0..=1.0).contains(&p));
            prop_assert!(pass_at_k(n, c, k + 1).unwrap() >= p - 1e-12);
            if c < n { prop_assert!(pass_at_k(n, c + 1, k).unwrap() >= p - 1e-12); }
        }
    }
}
