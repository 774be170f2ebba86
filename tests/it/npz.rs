//! NPZ round trips against numpy, both ways: what `npr` writes numpy reads value for value,
//! and what `numpy.savez` (plain and compressed) writes `npr` reads.
use npr::eval::npz::{write_npz, NpyArray, Npz};

use crate::common::run_python;

/// Paths with commas, quotes, a newline, accents and a character outside the BMP.
const STRINGS: [&str; 5] = [
    "a,b.png",
    "say \"hi\".jpg",
    "new\nline",
    "é/ß/日本.png",
    "🙂",
];

#[test]
fn numpy_reads_what_npr_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.npz");
    let floats = [0.0, -0.0, 1.5, f32::INFINITY, f32::MIN_POSITIVE, -2.25];
    write_npz(
        &path,
        &[
            ("f4", NpyArray::f32(&[2, 1, 3], &floats)),
            ("f8", NpyArray::f64(&[2], &[0.1, f64::MAX])),
            ("i8", NpyArray::i64(&[i64::MIN, -1, i64::MAX])),
            ("u1", NpyArray::u8(&[0, 1, 255])),
            ("s", NpyArray::strings(&STRINGS)),
            ("empty", NpyArray::f32(&[0, 4], &[])),
        ],
    )
    .unwrap();
    let check = r#"
import sys, numpy as np
z = np.load(sys.argv[1])
assert list(z.keys()) == ["f4", "f8", "i8", "u1", "s", "empty"], list(z.keys())
f4 = np.array([0.0, -0.0, 1.5, np.inf, np.finfo(np.float32).tiny, -2.25], "<f4").reshape(2, 1, 3)
assert z["f4"].dtype == "<f4" and z["f4"].tobytes() == f4.tobytes()
assert z["f8"].dtype == "<f8" and list(z["f8"]) == [0.1, np.finfo(np.float64).max]
assert z["i8"].dtype == "<i8" and list(z["i8"]) == [-2**63, -1, 2**63 - 1]
assert z["u1"].dtype == "|u1" and list(z["u1"]) == [0, 1, 255]
assert z["s"].dtype == "<U12", z["s"].dtype
assert list(z["s"]) == ["a,b.png", 'say "hi".jpg', "new\nline", "é/ß/日本.png", "🙂"], list(z["s"])
assert z["empty"].shape == (0, 4)
print("ok")
"#;
    let script = dir.path().join("check.py");
    std::fs::write(&script, check).unwrap();
    let out = run_python(script.to_str().unwrap(), &[path.to_str().unwrap()]);
    assert_eq!(out.trim(), "ok");
}

#[test]
fn npr_reads_what_numpy_writes() {
    let dir = tempfile::tempdir().unwrap();
    let write = r#"
import sys, numpy as np
arrays = dict(
    w=np.arange(12, dtype="<f4").reshape(2, 2, 3) / 4,
    l=np.array([0, 1], "|u1"),
    g=np.array([-3, 7], "<i8"),
    s=np.array([0.25, 1.0], "<f8"),
    n=np.array(["a,b.png", 'say "hi".jpg', "new\nline", "é/ß/日本.png", "🙂"]),
)
np.savez(sys.argv[1], **arrays)
np.savez_compressed(sys.argv[2], **arrays)
"#;
    let script = dir.path().join("write.py");
    std::fs::write(&script, write).unwrap();
    let (plain, packed) = (dir.path().join("p.npz"), dir.path().join("c.npz"));
    run_python(
        script.to_str().unwrap(),
        &[plain.to_str().unwrap(), packed.to_str().unwrap()],
    );
    for path in [plain, packed] {
        let mut z = Npz::open(&path).unwrap();
        let w: Vec<f64> = (0..12).map(|i| f64::from(i) / 4.0).collect();
        assert_eq!(z.numbers("w").unwrap(), (vec![2, 2, 3], w));
        assert_eq!(z.numbers("l").unwrap(), (vec![2], vec![0.0, 1.0]));
        assert_eq!(z.numbers("g").unwrap(), (vec![2], vec![-3.0, 7.0]));
        assert_eq!(z.numbers("s").unwrap(), (vec![2], vec![0.25, 1.0]));
        assert_eq!(z.strings("n").unwrap(), STRINGS);
    }
}
