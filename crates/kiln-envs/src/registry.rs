//! Gymnasium-style registry: `make("CartPole-v1")` returns a boxed environment
//! wrapped in the default [`TimeLimit`] of that id.

use crate::classic::{Acrobot, CartPole, MountainCarContinuous, Pendulum};
use crate::env::Env;
use crate::error::EnvError;
use crate::fishery::Fishery;
use crate::point_maze::PointMaze2D;
use crate::tabular::{make_garnet, make_gridworld, make_river_swim};
use crate::tax_economy::TaxEconomy;
use crate::wrappers::TimeLimit;

/// A registered environment.
#[derive(Debug, Clone, Copy)]
pub struct EnvSpec {
    /// Gymnasium-style id.
    pub id: &'static str,
    /// Default time limit (`None`: episodes end only by termination).
    pub max_episode_steps: Option<usize>,
    /// One-line description.
    pub description: &'static str,
    build: fn(&serde_json::Value) -> Result<Box<dyn Env>, EnvError>,
}

impl EnvSpec {
    /// Build the bare environment (no time limit) from JSON parameters (`null` for defaults).
    pub fn build(&self, params: &serde_json::Value) -> Result<Box<dyn Env>, EnvError> {
        (self.build)(params)
    }
}

fn boxed<E: Env + 'static>(r: Result<E, EnvError>) -> Result<Box<dyn Env>, EnvError> {
    r.map(|e| Box::new(e) as Box<dyn Env>)
}

static SPECS: &[EnvSpec] = &[
    EnvSpec {
        id: "CartPole-v1",
        max_episode_steps: Some(500),
        description: "cart-pole balancing (Barto et al. 1983), Gymnasium dynamics",
        build: |p| boxed(CartPole::from_json(p)),
    },
    EnvSpec {
        id: "Pendulum-v1",
        max_episode_steps: Some(200),
        description: "pendulum swing-up with continuous torque, Gymnasium dynamics incl. float32 torque term",
        build: |p| boxed(Pendulum::from_json(p)),
    },
    EnvSpec {
        id: "MountainCarContinuous-v0",
        max_episode_steps: Some(999),
        description: "mountain car with continuous force (Moore 1990), Gymnasium dynamics incl. float32 state",
        build: |p| boxed(MountainCarContinuous::from_json(p)),
    },
    EnvSpec {
        id: "Acrobot-v1",
        max_episode_steps: Some(500),
        description: "two-link acrobot swing-up (Sutton 1996), RK4, Gymnasium dynamics",
        build: |p| boxed(Acrobot::from_json(p)),
    },
    EnvSpec {
        id: "PointMaze2D-v0",
        max_episode_steps: Some(100),
        description: "2-D point navigation around a block to a goal, sparse reward (generative-policy testbed)",
        build: |p| boxed(PointMaze2D::from_json(p, false)),
    },
    EnvSpec {
        id: "PointMaze2DDense-v0",
        max_episode_steps: Some(100),
        description: "PointMaze2D with dense reward -|p - goal|",
        build: |p| boxed(PointMaze2D::from_json(p, true)),
    },
    EnvSpec {
        id: "Fishery1-v0",
        max_episode_steps: Some(200),
        description: "fishery Model 1 (May 1977 tipping point, one species), Montealegre-Mora et al. 2023",
        build: |p| boxed(Fishery::from_json(1, p)),
    },
    EnvSpec {
        id: "Fishery2-v0",
        max_episode_steps: Some(200),
        description: "fishery Model 2 (three species, X harvested)",
        build: |p| boxed(Fishery::from_json(2, p)),
    },
    EnvSpec {
        id: "Fishery3-v0",
        max_episode_steps: Some(200),
        description: "fishery Model 3 (three species, X and Y harvested) - the paper's headline",
        build: |p| boxed(Fishery::from_json(3, p)),
    },
    EnvSpec {
        id: "Fishery4-v0",
        max_episode_steps: Some(200),
        description: "fishery Model 4 (Model 3 with the r_X(t) climate drift)",
        build: |p| boxed(Fishery::from_json(4, p)),
    },
    EnvSpec {
        id: "GridWorld-v0",
        max_episode_steps: Some(100),
        description: "tabular gridworld with slip (params: width, height, slip, goal, walls, ...)",
        build: |p| boxed(make_gridworld(p)),
    },
    EnvSpec {
        id: "RiverSwim-v0",
        max_episode_steps: Some(20),
        description: "tabular RiverSwim (Strehl & Littman 2008; Osband et al. 2013 parameters)",
        build: |p| boxed(make_river_swim(p)),
    },
    EnvSpec {
        id: "Garnet-v0",
        max_episode_steps: Some(100),
        description: "random tabular Garnet MDP (params: n_states, n_actions, branching, gamma, seed)",
        build: |p| boxed(make_garnet(p)),
    },
    EnvSpec {
        id: "TaxEconomy-v0",
        max_episode_steps: Some(20),
        description: "LLM Economist tax design: planner sets bracket rates, rational or learning workers respond",
        build: |p| boxed(TaxEconomy::from_json(p)),
    },
];

/// All registered environments.
pub fn specs() -> &'static [EnvSpec] {
    SPECS
}

/// Look up a spec by id; an unknown id is an error listing the known ids.
pub fn spec(id: &str) -> Result<&'static EnvSpec, EnvError> {
    SPECS
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| EnvError::UnknownId {
            id: id.to_string(),
            known: SPECS.iter().map(|s| s.id).collect::<Vec<_>>().join(", "),
        })
}

/// `make(id)`: default parameters, default time limit.
pub fn make(id: &str) -> Result<Box<dyn Env>, EnvError> {
    make_with(id, &serde_json::Value::Null, true)
}

/// `make` with JSON parameters (e.g. `{"length": 0.7}`; `null` for defaults)
/// and a choice of the default time limit.
pub fn make_with(
    id: &str,
    params: &serde_json::Value,
    time_limit: bool,
) -> Result<Box<dyn Env>, EnvError> {
    let spec = spec(id)?;
    let env = spec.build(params)?;
    Ok(match (time_limit, spec.max_episode_steps) {
        (true, Some(t)) => Box::new(TimeLimit::new(env, t)),
        _ => env,
    })
}
