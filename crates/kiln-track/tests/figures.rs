//! Renders real figures and inspects the PNG pixels and SVG text.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use kiln_track::{Bar, Curve, PlotOptions, bar_chart, learning_curves};

/// Decodes a PNG into (width, height, RGB triples).
fn read_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(BufReader::new(File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected color type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

fn seeds(offsets: &[f64], slope: f64) -> Vec<Vec<(f64, f64)>> {
    offsets
        .iter()
        .map(|o| {
            (0..=50)
                .map(|i| (f64::from(i) * 1000.0, slope * f64::from(i) + o))
                .collect()
        })
        .collect()
}

#[test]
fn learning_curve_png_and_svg_render_with_text() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("cartpole.curves");
    let curves = [
        Curve {
            label: "PPO".into(),
            runs: seeds(&[0.0, 20.0, -15.0, 5.0], 9.0),
        },
        Curve {
            label: "A2C".into(),
            runs: seeds(&[3.0], 4.0),
        },
    ];
    let opts = PlotOptions {
        title: "CartPole-v1 learning curves".into(),
        ..PlotOptions::default()
    };
    learning_curves(&curves, &opts, &stem).unwrap();

    let (w, h, pixels) = read_png(&dir.path().join("cartpole.curves.png"));
    assert_eq!((w, h), (900, 600));
    let distinct: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(
        distinct.len() > 50,
        "only {} colours: blank or flat image",
        distinct.len()
    );

    // The title is drawn centred in the top margin; nothing else is there.
    // Dark, anti-aliased pixels in that strip prove the embedded font rendered.
    let background = [255, 255, 255];
    let title_strip: Vec<[u8; 3]> = (5..45)
        .flat_map(|y| (250..650).map(move |x| (y * w + x) as usize))
        .map(|i| pixels[i])
        .collect();
    let inked = title_strip.iter().filter(|&&p| p != background).count();
    assert!(inked > 200, "title area has {inked} non-white pixels");
    let title_colours: HashSet<[u8; 3]> = title_strip.into_iter().collect();
    assert!(
        title_colours.len() > 5,
        "title text is not anti-aliased glyphs"
    );

    // The confidence band of PPO (4 seeds) is a light tint of its line colour.
    let band = [
        0.2 * 31.0 + 0.8 * 255.0,
        0.2 * 119.0 + 0.8 * 255.0,
        0.2 * 180.0 + 0.8 * 255.0,
    ];
    let near_band = pixels
        .iter()
        .filter(|p| {
            p.iter()
                .zip(band)
                .all(|(&c, b)| (f64::from(c) - b).abs() <= 3.0)
        })
        .count();
    assert!(
        near_band > 1000,
        "no shaded band found ({near_band} pixels)"
    );

    let svg = std::fs::read_to_string(dir.path().join("cartpole.curves.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains("CartPole-v1 learning curves"));
    assert!(svg.contains("PPO (4 seeds)"));
    assert!(svg.contains("A2C"));

    // Nothing but the two figures is left in the directory (no temp files).
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["cartpole.curves.png", "cartpole.curves.svg"]);
}

#[test]
fn bar_chart_renders_labels_and_whiskers() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("final");
    let bars = [
        Bar {
            label: "PPO".into(),
            mean: 480.0,
            ci_low: 450.0,
            ci_high: 500.0,
        },
        Bar {
            label: "DQN".into(),
            mean: -120.0,
            ci_low: -160.0,
            ci_high: -90.0,
        },
        Bar {
            label: "one seed".into(),
            mean: 200.0,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
        },
    ];
    bar_chart("Final return", "return", &bars, &stem).unwrap();

    let (w, h, pixels) = read_png(&dir.path().join("final.png"));
    assert_eq!((w, h), (900, 600));
    let distinct: HashSet<[u8; 3]> = pixels.iter().copied().collect();
    assert!(distinct.len() > 20, "only {} colours", distinct.len());

    let svg = std::fs::read_to_string(dir.path().join("final.svg")).unwrap();
    for text in ["Final return", "PPO", "DQN", "one seed"] {
        assert!(svg.contains(text), "SVG lacks {text:?}");
    }
}
