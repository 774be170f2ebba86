//! Official NPR checkpoints (`NPR.pth`, written by PyTorch's `torch.save`), read with
//! `pytorch-reader`: it interprets the pickle without executing it (tensors are rebuilt
//! from the classes `torch.save` uses; any other object is an opaque value and skipped),
//! applies strides and offsets, and caps sizes and nesting against hostile files. This file adapts its output
//! to tch: names (wrapper key and `module.` prefix), dtypes, tensors.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use pytorch_reader::{DType, PytorchReader};
use tch::{Kind, Tensor};

use crate::config::{Backbone, Config, Fusion};

/// Keys under which training scripts nest the weights (`torch.save({'model': …})`).
const WRAPPERS: [&str; 2] = ["model.", "state_dict."];

/// The config of the official NPR network (`NPR.pth`).
pub fn official_npr_config() -> Config {
    let mut config = Config {
        name: "official_npr".into(),
        ..Config::default()
    };
    config.model.backbone = Backbone::NprResnet50;
    config.model.fusion = Fusion::Single;
    config.model.scales = vec![0.5];
    config
}

/// Reads an official NPR checkpoint: a flat state_dict, or the weights under `model` /
/// `state_dict` (other entries such as optimizer state are ignored); `module.` prefixes
/// (DataParallel) are stripped. Non-tensor values (epoch, args) are skipped.
pub fn read_official(path: &Path) -> Result<HashMap<String, Tensor>> {
    let context = || format!("reading PyTorch checkpoint {}", path.display());
    let reader = PytorchReader::new(path).with_context(context)?;
    let mut names: Vec<&String> = reader.tensors().keys().collect();
    names.sort();
    let wrapper = WRAPPERS
        .into_iter()
        .find(|w| names.iter().any(|name| name.starts_with(w)));
    let mut out = HashMap::new();
    for name in names {
        let Some(key) = wrapper.map_or(Some(name.as_str()), |w| name.strip_prefix(w)) else {
            continue;
        };
        let key = key.strip_prefix("module.").unwrap_or(key).to_string();
        if out.contains_key(&key) {
            bail!(
                "{}: two tensors map to {key:?} after removing prefixes",
                path.display()
            );
        }
        let raw = &reader.tensors()[name];
        let kind = kind_of(raw.dtype())
            .with_context(|| format!("tensor {name:?} of {}", path.display()))?;
        let bytes = raw
            .read()
            .with_context(|| format!("reading tensor {name:?} of {}", path.display()))?;
        let shape: Vec<i64> = raw.shape().iter().map(|&d| d as i64).collect();
        out.insert(key, Tensor::from_data_size(&bytes, &shape, kind));
    }
    Ok(out)
}

/// The tch kind of a checkpoint dtype; unsigned types wider than a byte have none.
fn kind_of(dtype: DType) -> Result<Kind> {
    Ok(match dtype {
        DType::F64 => Kind::Double,
        DType::F32 => Kind::Float,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::I64 => Kind::Int64,
        DType::I32 => Kind::Int,
        DType::I16 => Kind::Int16,
        DType::I8 => Kind::Int8,
        DType::U8 => Kind::Uint8,
        DType::Bool => Kind::Bool,
        DType::U64 | DType::U32 | DType::U16 => {
            bail!("dtype {dtype:?} is not supported (libtorch has no such tensor kind here)")
        }
    })
}

#[cfg(test)]
mod tests {
    //! Fixtures come from the real `torch.save` (Python with torch: `$NPR_PYTHON`, else the
    //! crate's `.venv/bin/python`), which also writes, next to each checkpoint, the raw
    //! little-endian bytes of every `.contiguous()` tensor; values are compared bit for bit.
    //! Damaged and hostile files are derived from them here.
    use super::*;
    use std::fs;
    use std::io::{Cursor, Read, Write};
    use std::path::PathBuf;
    use std::process::Command;

    /// `save(obj, path)` = `torch.save` plus `path.expected`: one line per tensor leaf,
    /// `name<TAB>dtype<TAB>d0,d1,..<TAB>hex of the contiguous bytes`.
    const PY_PRELUDE: &str = r#"
import argparse, collections, torch

def flat(v, name, out):
    join = lambda k: k if not name else name + '.' + str(k)
    if isinstance(v, torch.Tensor):
        out.append((name, v))
    elif isinstance(v, dict):
        for k, x in v.items():
            flat(x, join(k), out)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            flat(x, join(i), out)

def save(obj, path, **kw):
    torch.save(obj, path, **kw)
    out = []
    flat(obj, '', out)
    with open(path + '.expected', 'w') as f:
        for name, t in out:
            t = t.detach()
            raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()
            dtype = str(t.dtype).replace('torch.', '')
            f.write('%s\t%s\t%s\t%s\n' % (name, dtype, ','.join(map(str, t.shape)), raw))

def small_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(collections.OrderedDict([
        ('conv1', torch.nn.Conv2d(3, 4, 3, stride=2, bias=False)),
        ('bn1', torch.nn.BatchNorm2d(4)),
        ('relu', torch.nn.ReLU()),
        ('pool', torch.nn.AdaptiveAvgPool2d(1)),
        ('flatten', torch.nn.Flatten()),
        ('fc1', torch.nn.Linear(4, 1)),
    ]))
    net.train()
    net(torch.randn(2, 3, 9, 9))
    return net
"#;

    fn python() -> PathBuf {
        std::env::var_os("NPR_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python"))
            })
    }

    /// Runs `script` (after the prelude) in a fresh temp folder and returns the folder.
    fn python_fixtures(script: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let python = python();
        let out = Command::new(&python)
            .arg("-c")
            .arg(format!("{PY_PRELUDE}\n{script}"))
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}); these tests need Python with torch: set NPR_PYTHON",
                    python.display()
                )
            });
        assert!(
            out.status.success(),
            "fixture script failed under {}:\n{}",
            python.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    }

    fn from_hex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect()
    }

    fn bytes_of(t: &Tensor) -> Vec<u8> {
        let t = t.contiguous();
        let mut out = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
        t.copy_data_u8(&mut out, t.numel());
        out
    }

    /// Reads `path` and checks that every tensor Python wrote under `prefix` arrives under
    /// the name without it, with torch's dtype, shape and bytes.
    fn assert_matches_python(path: &Path, prefix: &str) -> HashMap<String, Tensor> {
        let got = read_official(path).unwrap_or_else(|e| panic!("{e:#}"));
        let manifest =
            fs::read_to_string(format!("{}.expected", path.display())).expect("manifest");
        let mut expected = 0;
        for line in manifest.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let Some(name) = f[0].strip_prefix(prefix) else {
                continue;
            };
            let t = got.get(name).unwrap_or_else(|| panic!("{name} missing"));
            let dims: Vec<i64> = f[2]
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().expect("dim"))
                .collect();
            assert_eq!(t.size(), dims, "{name}");
            assert_eq!(format!("{:?}", t.kind()), torch_kind_name(f[1]), "{name}");
            assert!(
                bytes_of(t) == from_hex(f[3]),
                "{name}: bytes differ from torch's"
            );
            expected += 1;
        }
        assert_eq!(
            got.len(),
            expected,
            "no tensors beyond Python's: {:?}",
            got.keys()
        );
        got
    }

    /// tch's name for a torch dtype name.
    fn torch_kind_name(dtype: &str) -> &'static str {
        match dtype {
            "float32" => "Float",
            "float64" => "Double",
            "float16" => "Half",
            "bfloat16" => "BFloat16",
            "int64" => "Int64",
            "int32" => "Int",
            "int16" => "Int16",
            "int8" => "Int8",
            "uint8" => "Uint8",
            "bool" => "Bool",
            other => panic!("unexpected dtype {other}"),
        }
    }

    fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip");
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).expect("entry");
                let mut data = Vec::new();
                f.read_to_end(&mut data).expect("read entry");
                (f.name().to_string(), data)
            })
            .collect()
    }

    fn rezip(entries: &[(String, Vec<u8>)], path: &Path) {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, data) in entries {
            w.start_file(name.as_str(), opts).expect("zip entry");
            w.write_all(data).expect("zip write");
        }
        fs::write(path, w.finish().expect("zip finish").into_inner()).expect("write");
    }

    #[test]
    fn flat_state_dict_matches_torch_bit_for_bit() {
        let dir = python_fixtures("save(small_net().state_dict(), 'flat.pth')");
        let sd = assert_matches_python(&dir.path().join("flat.pth"), "");
        let mut names: Vec<&str> = sd.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "bn1.bias",
                "bn1.num_batches_tracked",
                "bn1.running_mean",
                "bn1.running_var",
                "bn1.weight",
                "conv1.weight",
                "fc1.bias",
                "fc1.weight"
            ]
        );
        assert_eq!(sd["bn1.num_batches_tracked"].int64_value(&[]), 1);
    }

    #[test]
    fn wrapped_checkpoint_drops_prefixes_optimizer_and_non_tensors() {
        let dir = python_fixtures(
            r#"
net = small_net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
net(torch.randn(2, 3, 9, 9)).sum().backward()
opt.step()
save({'model': {'module.' + k: v for k, v in net.state_dict().items()},
      'epoch': 3, 'opt': opt.state_dict(),
      'args': argparse.Namespace(lr=0.1, name='npr', sizes=[1, 2]),
      'best': {'acc': 0.5, 'big': 2**70, 'none': None, 'names': ('a', 'b'), 'empty': {}}},
     'wrapped.pth')
"#,
        );
        let sd = assert_matches_python(&dir.path().join("wrapped.pth"), "model.module.");
        assert!(
            sd.contains_key("conv1.weight") && sd.len() == 8,
            "{:?}",
            sd.keys()
        );
    }

    #[test]
    fn views_dtypes_and_the_legacy_format_load() {
        let dir = python_fixtures(
            r#"
base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
x = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
obj = {'t': base.t(), 'slice': base[1:3, 2:5], 'step': base[:, ::2], 'elem': base[2, 3],
       'expanded': torch.arange(3.).expand(2, 3), 'empty': torch.zeros(0, 5),
       'perm': torch.arange(60).reshape(3, 4, 5).permute(2, 0, 1),
       'f16': x.half().t(), 'bf16': x.bfloat16()[:, 1], 'f64': x.double(), 'bool': x > 0,
       'i8': (x * 50).to(torch.int8), 'u8': (x * 50 + 100).to(torch.uint8),
       'i16': (x * 1000).to(torch.int16), 'i32': (x * 1e6).to(torch.int32)}
assert obj['slice'].storage_offset() == 8 and not obj['t'].is_contiguous()
save(obj, 'views.pth')
save(obj, 'legacy.pth', _use_new_zipfile_serialization=False)
torch.save({'w': torch.arange(4).to(torch.uint16)}, 'u16.pth')
"#,
        );
        let sd = assert_matches_python(&dir.path().join("views.pth"), "");
        // Independent of Python's dump: a slice of arange(24).reshape(4, 6).
        let slice: Vec<f32> = Vec::try_from(sd["slice"].flatten(0, -1)).unwrap();
        assert_eq!(slice, [8.0, 9.0, 10.0, 14.0, 15.0, 16.0]);
        assert_matches_python(&dir.path().join("legacy.pth"), "");
        let err = format!(
            "{:#}",
            read_official(&dir.path().join("u16.pth")).unwrap_err()
        );
        assert!(err.contains("\"w\"") && err.contains("U16"), "{err}");
    }

    #[test]
    fn damaged_files_are_errors_that_name_the_path_never_panics() {
        let dir = python_fixtures("save({'model': small_net().state_dict(), 'epoch': 1}, 'n.pth')");
        let bytes = fs::read(dir.path().join("n.pth")).expect("read");
        let bad = dir.path().join("bad.pth");
        let read_bad = || read_official(&bad).map_err(|e| format!("{e:#}"));
        for len in (0..bytes.len()).step_by(61) {
            fs::write(&bad, &bytes[..len]).expect("write");
            let err = read_bad().expect_err("a cut file loaded");
            assert!(err.contains(&bad.display().to_string()), "{err}");
        }
        for content in [&b""[..], b"hello, this is not a checkpoint", b"PK"] {
            fs::write(&bad, content).expect("write");
            read_bad().expect_err("not a checkpoint");
        }
        let missing = read_official(&dir.path().join("missing.pth")).unwrap_err();
        assert!(
            format!("{missing:#}").contains("missing.pth"),
            "{missing:#}"
        );

        // Every byte of the pickle mutated: errors or loads, never a panic.
        let entries = unzip(&bytes);
        let pkl_at = entries
            .iter()
            .position(|e| e.0.ends_with("data.pkl"))
            .expect("pkl");
        let (mut loaded, mut failed) = (0, 0);
        for at in 0..entries[pkl_at].1.len() {
            let mut mutated = entries.clone();
            mutated[pkl_at].1[at] ^= 0x80;
            rezip(&mutated, &bad);
            match read_official(&bad) {
                Ok(_) => loaded += 1,
                Err(_) => failed += 1,
            }
        }
        assert!(loaded > 0 && failed > 0, "{loaded} loaded, {failed} failed");
        // A storage entry cut short is refused.
        let mut short = entries.clone();
        let storage = short
            .iter_mut()
            .find(|e| e.0.ends_with("/data/0"))
            .expect("storage");
        storage.1.truncate(storage.1.len() - 4);
        rezip(&short, &bad);
        read_bad().expect_err("short storage");
    }

    #[test]
    fn a_pickle_that_would_run_code_runs_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let marker = dir.path().join("ran");
        let script = format!(
            "import os, torch\n\
             class Evil:\n    def __reduce__(self):\n        return (os.system, ('touch {m}',))\n\
             torch.save({{'w': torch.ones(2), 'x': Evil()}}, 'evil.pth')",
            m = marker.display()
        );
        let fixtures = python_fixtures(&script);
        assert!(!marker.exists(), "saving must not run it either");
        // The call to `os.system` is an opaque non-tensor value: skipped, never called.
        let sd = read_official(&fixtures.path().join("evil.pth")).unwrap();
        assert!(!marker.exists(), "reading ran code");
        assert_eq!(sd.keys().collect::<Vec<_>>(), ["w"]);
    }
}
