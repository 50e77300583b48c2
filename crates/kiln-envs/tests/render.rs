//! Rendering: frames have Gymnasium's sizes, PNG/GIF files decode back, the
//! CLI's parsers and replay path behave.

use kiln_envs::render::{RenderPolicy, record_episodes, save_gif};
use kiln_envs::rollout::{Start, parse_actions, parse_state, replay};
use kiln_envs::{Action, Env, Space, make};

#[test]
fn frames_have_gymnasium_sizes_and_show_the_state() {
    let mut cp = make("CartPole-v1").expect("make");
    cp.reset(Some(0)).expect("reset");
    cp.set_state(&[1.0, 0.0, 0.0, 0.0]).expect("state");
    let img = cp.render().expect("render");
    assert_eq!((img.width, img.height), (600, 400));
    // cart centre at x = 1 m: 300 + 125 px, black
    assert_eq!(img.pixel(405, 310), Some([0, 0, 0]));
    assert_eq!(
        img.pixel(175, 310),
        Some([255, 255, 255]),
        "no cart at x = -1 m"
    );
    let pd = make("Pendulum-v1").expect("make");
    let mut pd = pd;
    pd.reset(Some(0)).expect("reset");
    assert_eq!(pd.render().expect("render").width, 500);
    assert!(
        make("Acrobot-v1").expect("make").render().is_err(),
        "no renderer: a typed error"
    );
}

#[test]
fn png_and_gif_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let frames = record_episodes(
        "PointMaze2D-v0",
        &serde_json::Value::Null,
        RenderPolicy::Expert,
        1,
        0,
    )
    .expect("frames");
    assert!(
        frames.len() > 10,
        "the expert reaches the goal in a few dozen steps"
    );
    let png_path = dir.path().join("f.png");
    frames[0].save_png(&png_path).expect("png");
    let dec = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).expect("open"),
    ));
    let reader = dec.read_info().expect("png header");
    assert_eq!((reader.info().width, reader.info().height), (400, 400));
    let gif_path = dir.path().join("ep.gif");
    save_gif(&frames, 30.0, &gif_path).expect("gif");
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    let mut dec = opts
        .read_info(std::fs::File::open(&gif_path).expect("open"))
        .expect("gif header");
    let mut n = 0;
    while dec.read_next_frame().expect("frame").is_some() {
        n += 1;
    }
    assert_eq!(n, frames.len());
    assert!(save_gif(&[], 30.0, dir.path().join("empty.gif")).is_err());
    assert!(
        record_episodes(
            "CartPole-v1",
            &serde_json::Value::Null,
            RenderPolicy::Expert,
            1,
            0
        )
        .is_err(),
        "no expert for CartPole"
    );
}

#[test]
fn cli_parsers_and_replay() {
    let discrete = Space::discrete(2);
    assert_eq!(
        parse_actions("0, 1,1", &discrete).expect("inline"),
        vec![
            Action::Discrete(0),
            Action::Discrete(1),
            Action::Discrete(1)
        ]
    );
    assert!(parse_actions("0,x", &discrete).is_err());
    let boxed = make("Pendulum-v1").expect("make").action_space().clone();
    assert_eq!(
        parse_actions("[[0.5], 2.5]", &boxed).expect("json"),
        vec![Action::Continuous(vec![0.5]), Action::Continuous(vec![2.5])]
    );
    assert_eq!(parse_state("0.1, -2").expect("state"), vec![0.1, -2.0]);
    // the rollout stops at termination
    let acts = vec![Action::Discrete(1); 100];
    let r = replay(
        "CartPole-v1",
        &serde_json::Value::Null,
        &Start::State(vec![0.0, 0.0, 0.2, 0.0]),
        &acts,
        true,
    )
    .expect("replay");
    assert!(r.steps.last().expect("steps").terminated && r.steps.len() < 100);
    // out-of-range Pendulum torque is clipped like Gymnasium (same as 2.0)
    let a = replay(
        "Pendulum-v1",
        &serde_json::Value::Null,
        &Start::State(vec![1.0, 0.0]),
        &[Action::Continuous(vec![5.0])],
        true,
    )
    .expect("replay");
    let b = replay(
        "Pendulum-v1",
        &serde_json::Value::Null,
        &Start::State(vec![1.0, 0.0]),
        &[Action::Continuous(vec![2.0])],
        true,
    )
    .expect("replay");
    assert_eq!(a.steps[0].obs, b.steps[0].obs);
}
