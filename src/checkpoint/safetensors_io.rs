//! safetensors files with string metadata, written atomically (temp file, fsync, rename),
//! so that an interrupted write never leaves a half checkpoint behind.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use tch::{Device, Kind, Tensor};

/// Each tensor kind a checkpoint may hold and its safetensors dtype.
const DTYPES: [(Kind, Dtype); 10] = [
    (Kind::Float, Dtype::F32),
    (Kind::Double, Dtype::F64),
    (Kind::Half, Dtype::F16),
    (Kind::BFloat16, Dtype::BF16),
    (Kind::Int64, Dtype::I64),
    (Kind::Int, Dtype::I32),
    (Kind::Int16, Dtype::I16),
    (Kind::Int8, Dtype::I8),
    (Kind::Uint8, Dtype::U8),
    (Kind::Bool, Dtype::BOOL),
];

fn dtype_of(kind: Kind) -> Result<Dtype> {
    let found = DTYPES.iter().find(|(k, _)| *k == kind).map(|&(_, d)| d);
    found.with_context(|| format!("cannot store tensors of kind {kind:?} in safetensors"))
}

fn kind_of(dtype: Dtype) -> Result<Kind> {
    let found = DTYPES.iter().find(|(_, d)| *d == dtype).map(|&(k, _)| k);
    found.with_context(|| format!("unsupported safetensors dtype {dtype:?}"))
}

/// Little-endian bytes of a tensor (moved to CPU, made contiguous).
pub fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let numel = t.numel();
    let mut buf = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.copy_data_u8(&mut buf, numel);
    buf
}

/// Writes `tensors` and `metadata` to `path` via a temporary file in the same folder.
pub fn write_safetensors_atomic(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        owned.push((name.clone(), dtype_of(t.kind())?, shape, tensor_bytes(t)));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    let bytes = safetensors::serialize(views, &Some(meta)).map_err(|e| anyhow::anyhow!("{e:?}"))?;

    crate::atomic::write(path, &bytes).context("writing a checkpoint")
}

/// Reads every tensor (on CPU) and the metadata of a safetensors file.
pub fn read_safetensors(path: &Path) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let parsed = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a valid safetensors file ({e:?})", path.display()))?;
    let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let mut tensors = HashMap::new();
    for (name, view) in parsed.tensors() {
        let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        let t = Tensor::from_data_size(view.data(), &shape, kind_of(view.dtype())?);
        tensors.insert(name, t);
    }
    Ok((tensors, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.safetensors");
        let a = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        let b = Tensor::from_slice(&[1i64, 2, 3]);
        let meta: BTreeMap<String, String> = [("epoch".to_string(), "7".to_string())].into();
        write_safetensors_atomic(
            &path,
            &[
                ("a".into(), a.shallow_clone()),
                ("b".into(), b.shallow_clone()),
            ],
            &meta,
        )
        .unwrap();
        let (t, m) = read_safetensors(&path).unwrap();
        assert!(t["a"].equal(&a) && t["b"].equal(&b));
        assert_eq!(m["epoch"], "7");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }
}
