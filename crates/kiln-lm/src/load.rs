//! Loading real weights: GGUF files (dequantized to `f32`) and Hugging Face model
//! directories (`config.json`, `*.safetensors`, `tokenizer.json`), and writing both.
//!
//! GGUF stores the query and key projections of `llama` models permuted for llama.cpp's
//! interleaved rotary layout (`convert_hf_to_gguf.py`: rows of head `h` reordered from
//! `[half, pair]` to `[pair, half]`); the loader undoes it so that one model serves both
//! sources, and the writer applies it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use safetensors::{Dtype, SafeTensors};

use crate::config::LlamaConfig;
use crate::cpu::CpuLlama;
use crate::error::{LmError, Result, io_err, tensor_err};
use crate::gguf::{GgmlType, GgufFile, GgufValue, GgufWriter, write_atomic};
use crate::model::Llama;
use crate::tokenizer::Tokenizer;

/// A model with its tokenizer.
#[derive(Debug)]
pub struct LoadedModel {
    /// The network.
    pub model: Llama,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Where it came from.
    pub source: PathBuf,
}

/// GGUF name of Hugging Face parameter `hf` (`None` if the name is not a Llama weight).
fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (l, part) = rest.split_once('.')?;
    let g = match part {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{l}.{g}"))
}

/// Reorders the rows of a `[heads * dh, cols]` projection between Hugging Face's rotary
/// layout and GGUF's: `to_gguf` maps HF row `h dh + i dh/2 + j` to GGUF row `h dh + 2 j + i`.
fn permute_rows(w: &[f32], heads: usize, cols: usize, to_gguf: bool) -> Vec<f32> {
    let rows = w.len() / cols;
    let dh = rows / heads;
    let half = dh / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for i in 0..2 {
            for j in 0..half {
                let hf = h * dh + i * half + j;
                let gg = h * dh + 2 * j + i;
                let (src, dst) = if to_gguf { (hf, gg) } else { (gg, hf) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

fn rope_heads(c: &LlamaConfig, hf: &str) -> Option<usize> {
    if hf.ends_with("q_proj.weight") {
        Some(c.num_attention_heads)
    } else if hf.ends_with("k_proj.weight") {
        Some(c.num_key_value_heads)
    } else {
        None
    }
}

/// Where the weights of an opened model file come from.
enum Source {
    Gguf(GgufFile),
    Hf {
        dir: PathBuf,
        files: Vec<(PathBuf, Vec<u8>)>,
        /// name -> (file, dtype, shape, byte range)
        index: HashMap<String, (usize, Dtype, Vec<usize>, std::ops::Range<usize>)>,
    },
}

/// A model file opened and checked: its shape, its tokenizer, and its weights on request.
pub struct ModelFile {
    /// The model's shape.
    pub config: LlamaConfig,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    source: Source,
    path: PathBuf,
}

impl std::fmt::Debug for ModelFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFile")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish()
    }
}

impl ModelFile {
    /// Opens a GGUF file or a Hugging Face directory, whichever `path` is.
    pub fn open(path: &Path) -> Result<Self> {
        if path.is_dir() {
            open_hf_dir(path)
        } else if path.exists() {
            open_gguf(path)
        } else {
            Err(LmError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            })
        }
    }

    /// Weight `name` (Hugging Face name) as row-major `f32` of the given `[out, in]` shape.
    pub fn weight(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match &self.source {
            Source::Gguf(f) => {
                let path = f.path();
                let g = gguf_name(name).ok_or_else(|| tensor_err(path, name, "no GGUF name"))?;
                let (got, v) = f.tensor_f32(&g)?;
                if got != shape {
                    return Err(tensor_err(
                        path,
                        &g,
                        format!("shape {got:?}, expected {shape:?}"),
                    ));
                }
                Ok(match rope_heads(&self.config, name) {
                    Some(h) => permute_rows(&v, h, shape[1], false),
                    None => v,
                })
            }
            Source::Hf { dir, files, index } => {
                let Some((i, dtype, got, range)) = index.get(name) else {
                    return Err(tensor_err(dir, name, "not found in any *.safetensors file"));
                };
                let (p, bytes) = &files[*i];
                if got != shape {
                    return Err(tensor_err(
                        p,
                        name,
                        format!("shape {got:?}, expected {shape:?}"),
                    ));
                }
                let d = &bytes[range.clone()];
                Ok(match dtype {
                    Dtype::F32 => d
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    Dtype::F16 => d
                        .chunks_exact(2)
                        .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect(),
                    Dtype::BF16 => d
                        .chunks_exact(2)
                        .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                        .collect(),
                    other => {
                        return Err(tensor_err(
                            p,
                            name,
                            format!("dtype {other:?} is not supported (F32, F16, BF16)"),
                        ));
                    }
                })
            }
        }
    }

    /// The burn model on `device`.
    pub fn model(&self, device: &Device) -> Result<Llama> {
        Llama::from_weights(&self.config, device, &mut |n: &str, s: &[usize]| {
            self.weight(n, s)
        })
    }

    /// The host inference engine.
    pub fn cpu_model(&self) -> Result<CpuLlama> {
        CpuLlama::from_weights(&self.config, &mut |n: &str, s: &[usize]| self.weight(n, s))
    }

    /// The file or directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_gguf(path: &Path) -> Result<ModelFile> {
    let f = GgufFile::open(path)?;
    let config = LlamaConfig::from_gguf(&f)?;
    let tokenizer = Tokenizer::from_gguf(&f)?;
    Ok(ModelFile {
        config,
        tokenizer,
        source: Source::Gguf(f),
        path: path.to_path_buf(),
    })
}

/// Loads a GGUF file (`llama` architecture) with the tokenizer embedded in it.
pub fn load_gguf(path: &Path, device: &Device) -> Result<LoadedModel> {
    let f = open_gguf(path)?;
    Ok(LoadedModel {
        model: f.model(device)?,
        tokenizer: f.tokenizer,
        source: path.to_path_buf(),
    })
}

/// Writes `model` as a GGUF file with matrices stored as `ty` (norms stay `F32`) and the
/// tokenizer metadata `tokenizer_meta` (the `tokenizer.*` keys).
pub fn save_gguf(
    model: &Llama,
    ty: GgmlType,
    tokenizer_meta: &[(String, GgufValue)],
    path: &Path,
) -> Result<()> {
    let c = model.config();
    let mut w = GgufWriter::new();
    let u = |x: usize| GgufValue::U64(x as u64);
    w.meta("general.architecture", GgufValue::Str("llama".into()))
        .meta("general.alignment", u(32))
        .meta("llama.block_count", u(c.num_hidden_layers))
        .meta("llama.context_length", u(c.max_position_embeddings))
        .meta("llama.embedding_length", u(c.hidden_size))
        .meta("llama.feed_forward_length", u(c.intermediate_size))
        .meta("llama.attention.head_count", u(c.num_attention_heads))
        .meta("llama.attention.head_count_kv", u(c.num_key_value_heads))
        .meta("llama.rope.freq_base", GgufValue::F64(c.rope_theta))
        .meta(
            "llama.attention.layer_norm_rms_epsilon",
            GgufValue::F64(c.rms_norm_eps),
        )
        .meta("llama.vocab_size", u(c.vocab_size))
        .meta("llama.rope.dimension_count", u(c.head_dim()));
    for (k, v) in tokenizer_meta {
        w.meta(k, v.clone());
    }
    for (name, shape, values) in model.hf_weights() {
        let g = gguf_name(&name).ok_or_else(|| tensor_err(path, &name, "no GGUF name"))?;
        let values = match rope_heads(c, &name) {
            Some(h) => permute_rows(&values, h, shape[1], true),
            None => values,
        };
        let t = if shape.len() == 1 { GgmlType::F32 } else { ty };
        w.tensor(&g, &shape, t, &values);
    }
    w.write(path)
}

fn open_hf_dir(dir: &Path) -> Result<ModelFile> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(io_err(&cfg_path))?;
    let config = LlamaConfig::from_hf_json(&cfg_path, &text)?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(LmError::Format {
            path: dir.to_path_buf(),
            what: "no *.safetensors file in the model directory".into(),
        });
    }
    let files: Vec<(PathBuf, Vec<u8>)> = paths
        .into_iter()
        .map(|p| std::fs::read(&p).map_err(io_err(&p)).map(|b| (p, b)))
        .collect::<Result<_>>()?;
    let mut index = HashMap::new();
    for (i, (p, b)) in files.iter().enumerate() {
        let st = SafeTensors::deserialize(b).map_err(|e| LmError::Format {
            path: p.clone(),
            what: format!("not a safetensors file (truncated?): {e}"),
        })?;
        let base = b.as_ptr() as usize;
        for (name, t) in st.tensors() {
            let start = t.data().as_ptr() as usize - base;
            let range = start..start + t.data().len();
            index.insert(name, (i, t.dtype(), t.shape().to_vec(), range));
        }
    }
    let tok_path = dir.join("tokenizer.json");
    let mut tokenizer = Tokenizer::from_file(&tok_path)?;
    tokenizer.bos = config.bos_token_id;
    tokenizer.eos = config.eos_token_id;
    let tc_path = dir.join("tokenizer_config.json");
    if let Ok(tc) = std::fs::read_to_string(&tc_path) {
        let v: serde_json::Value = serde_json::from_str(&tc).map_err(|e| LmError::Format {
            path: tc_path.clone(),
            what: e.to_string(),
        })?;
        tokenizer.chat = v
            .get("chat_template")
            .and_then(|t| t.as_str())
            .and_then(crate::tokenizer::ChatTemplate::from_jinja);
        tokenizer.add_bos = v
            .get("add_bos_token")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
    }
    Ok(ModelFile {
        config,
        tokenizer,
        source: Source::Hf {
            dir: dir.to_path_buf(),
            files,
            index,
        },
        path: dir.to_path_buf(),
    })
}

/// Loads a Hugging Face model directory: `config.json`, one or more `*.safetensors` (F32,
/// F16 or BF16) and `tokenizer.json` (special ids from `config.json`; the chat template
/// from `tokenizer_config.json` when present).
pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<LoadedModel> {
    let f = open_hf_dir(dir)?;
    Ok(LoadedModel {
        model: f.model(device)?,
        tokenizer: f.tokenizer,
        source: dir.to_path_buf(),
    })
}

/// Writes a Hugging Face model directory (`config.json`, `model.safetensors` in F32 and
/// `tokenizer.json`), each file atomically; `transformers` can load it.
pub fn save_hf_dir(model: &Llama, tokenizer_json: &str, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let weights = model.hf_weights();
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = weights
        .into_iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| tensor_err(dir, n, e.to_string()))
        })
        .collect::<Result<_>>()?;
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let blob = safetensors::serialize(views, Some(meta)).map_err(|e| LmError::Format {
        path: dir.join("model.safetensors"),
        what: e.to_string(),
    })?;
    write_atomic(&dir.join("model.safetensors"), &blob)?;
    let cfg = serde_json::to_string_pretty(&model.config().to_hf_json()).unwrap_or_default();
    write_atomic(&dir.join("config.json"), cfg.as_bytes())?;
    write_atomic(&dir.join("tokenizer.json"), tokenizer_json.as_bytes())
}

/// [`save_hf_dir`] with a [`Tokenizer`]: its `tokenizer.json`, plus a
/// `tokenizer_config.json` holding its chat template and BOS rule, so the directory loads
/// back with the same prompt formatting.
pub fn save_hf_dir_with_tokenizer(model: &Llama, tokenizer: &Tokenizer, dir: &Path) -> Result<()> {
    let doc = tokenizer
        .inner()
        .to_string(false)
        .map_err(|e| LmError::Tokenizer(e.to_string()))?;
    save_hf_dir(model, &doc, dir)?;
    let mut tc = serde_json::json!({"add_bos_token": tokenizer.add_bos});
    if let Some(chat) = &tokenizer.chat {
        tc["chat_template"] = chat.to_jinja().into();
    }
    write_atomic(
        &dir.join("tokenizer_config.json"),
        tc.to_string().as_bytes(),
    )
}

/// Loads a GGUF file or a Hugging Face directory, whichever `path` is.
pub fn load(path: &Path, device: &Device) -> Result<LoadedModel> {
    let f = ModelFile::open(path)?;
    Ok(LoadedModel {
        model: f.model(device)?,
        tokenizer: f.tokenizer,
        source: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotary_permutation_inverts() {
        let w: Vec<f32> = (0..8 * 3).map(|x| x as f32).collect();
        let g = permute_rows(&w, 2, 3, true);
        // Head 0 rows (dh = 4, half = 2): HF rows [0, 1, 2, 3] -> GGUF [0, 2, 1, 3].
        assert_eq!(
            &g[..12],
            &[0., 1., 2., 6., 7., 8., 3., 4., 5., 9., 10., 11.]
        );
        assert_eq!(permute_rows(&g, 2, 3, false), w);
        assert_eq!(
            gguf_name("model.layers.12.mlp.down_proj.weight").unwrap(),
            "blk.12.ffn_down.weight"
        );
    }

    /// A directory saved with its tokenizer loads back with the same chat prompts and ids.
    #[test]
    fn hf_dir_keeps_the_tokenizer_and_chat_template() {
        let dir = tempfile::tempdir().unwrap();
        let device = kiln_tensor::testing::cpu();
        let m = crate::testing::tiny_model(2, &device).unwrap();
        let gguf = dir.path().join("m.gguf");
        crate::testing::write_tiny_gguf(&m, crate::GgmlType::F32, &gguf).unwrap();
        let a = load(&gguf, &device).unwrap();
        let out = dir.path().join("hf");
        save_hf_dir_with_tokenizer(&a.model, &a.tokenizer, &out).unwrap();
        let b = load(&out, &device).unwrap();
        assert_eq!(a.tokenizer.chat, b.tokenizer.chat);
        assert!(a.tokenizer.chat.is_some());
        let msg = [crate::ChatMessage::user("3+4=")];
        assert_eq!(
            a.tokenizer.encode_chat(&msg).unwrap(),
            b.tokenizer.encode_chat(&msg).unwrap()
        );
        assert_eq!(a.tokenizer.eos, b.tokenizer.eos);
        let t = crate::ChatTemplate {
            default_system: Some("It's a \\ test".into()),
        };
        assert_eq!(crate::ChatTemplate::from_jinja(&t.to_jinja()), Some(t));
    }
}
