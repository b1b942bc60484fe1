//! A model's named weight tensors, read from one or more safetensors files (shards) and handed
//! to an encoder one at a time, each checked before use: present, of the expected shape, a
//! supported dtype, and finite.
//!
//! Storage and computation differ on purpose. The shipped model is stored as **int8 with one
//! f32 scale per 128 weights of a row** (`X` as I8 plus `X.scale` as F32 [rows, cols/128]; see
//! `models/all-mpnet-base-v2/PROVENANCE.md`): a quarter of f32's size, so the repository and the
//! binary stay small and every file stays under 50 MB. It is computed in f32 because candle's CPU
//! matrix products are fastest there (f16 products measured several times slower). So each
//! tensor is widened once, at load, with candle's vectorised kernels; f32, f16 and bf16 tensors
//! load too, so a folder converted differently still works.
//!
//! candle has no I8 dtype: the bytes are read as U8 and mapped back (128..=255 are -128..=-1).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use safetensors::{Dtype, SafeTensors};

use super::EmbedError;

/// The tensors of every shard of a model, by name, not yet converted.
pub struct Weights<'a> {
    tensors: HashMap<String, (usize, safetensors::tensor::TensorView<'a>)>,
    /// Each shard's path, for errors (a tensor's `usize` is its shard).
    paths: Vec<PathBuf>,
    device: Device,
}

impl<'a> Weights<'a> {
    /// Reads the headers of `shards` (path for errors, bytes); a name defined in two shards, or a
    /// file that is not safetensors, is an error naming the file.
    pub fn read(shards: &[(PathBuf, &'a [u8])]) -> Result<Weights<'a>, EmbedError> {
        let mut tensors = HashMap::new();
        let mut paths = Vec::with_capacity(shards.len());
        for (n, (path, bytes)) in shards.iter().enumerate() {
            let file = SafeTensors::deserialize(bytes).map_err(|e| EmbedError::Invalid {
                path: path.clone(),
                what: "safetensors file",
                reason: e.to_string(),
            })?;
            for (name, view) in file.iter() {
                if let Some((other, _)) = tensors.insert(name.to_string(), (n, view)) {
                    return Err(EmbedError::Invalid {
                        path: path.clone(),
                        what: "safetensors file",
                        reason: format!("tensor `{name}` is also in {}", shards[other].0.display()),
                    });
                }
            }
            paths.push(path.clone());
        }
        Ok(Weights {
            tensors,
            paths,
            device: Device::Cpu,
        })
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.tensors.get(name).map_or_else(
            || self.paths.concat_names(),
            |&(n, _)| self.paths[n].clone(),
        )
    }

    /// The tensor `name` of shape `shape`, as f32.
    pub fn get(&mut self, name: &str, shape: &[usize]) -> Result<Tensor, EmbedError> {
        let path = self.path_of(name);
        let (_, view) = self
            .tensors
            .remove(name)
            .ok_or_else(|| EmbedError::MissingTensor {
                path: path.clone(),
                name: name.to_string(),
            })?;
        if view.shape() != shape {
            return Err(EmbedError::Shape {
                path,
                name: name.to_string(),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let candle = |e: candle_core::Error| EmbedError::Invalid {
            path: path.clone(),
            what: "safetensors file",
            reason: format!("tensor `{name}`: {e}"),
        };
        let tensor = match view.dtype() {
            Dtype::F32 | Dtype::F16 | Dtype::BF16 => {
                let dtype = match view.dtype() {
                    Dtype::F32 => DType::F32,
                    Dtype::F16 => DType::F16,
                    _ => DType::BF16,
                };
                Tensor::from_raw_buffer(view.data(), dtype, shape, &self.device)
                    .and_then(|t| t.to_dtype(DType::F32))
                    .map_err(candle)?
            }
            Dtype::I8 => {
                let (scale, groups) = self.take_scales(name, shape)?;
                let (rows, cols) = (shape[0], shape.iter().skip(1).product::<usize>());
                let mut values = vec![0f32; rows * cols];
                int8_weights::dequantize(
                    view.data(),
                    &scale,
                    rows,
                    cols,
                    cols / groups,
                    &mut values,
                );
                // Scales checked finite: the values then are too.
                return Tensor::from_vec(values, shape, &self.device).map_err(candle);
            }
            other => {
                return Err(EmbedError::DType {
                    path,
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        // One sum per tensor, no copy: NaN and infinities propagate into it, and a real model's
        // weights (|x| < 100) are far too small to overflow an f32 sum, so a non-finite sum means
        // a damaged tensor. The self-check would miss most of these: a NaN in the embedding row
        // of a token its sentence lacks only shows when a question uses that token.
        let sum = tensor
            .sum_all()
            .and_then(|s| s.to_scalar::<f32>())
            .map_err(candle)?;
        if !sum.is_finite() {
            return Err(EmbedError::NonFinite {
                path,
                name: name.to_string(),
            });
        }
        Ok(tensor)
    }
}

impl Weights<'_> {
    /// The f32 scales of int8 tensor `name` of `shape` ([rows, cols]): one per row, or one per
    /// group of a row; checked finite. Returns them and the number of groups per row.
    fn take_scales(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> Result<(Vec<f32>, usize), EmbedError> {
        let scale_name = format!("{name}.scale");
        let scale_path = self.path_of(&scale_name);
        let (_, scale) =
            self.tensors
                .remove(&scale_name)
                .ok_or_else(|| EmbedError::MissingTensor {
                    path: scale_path.clone(),
                    name: scale_name.clone(),
                })?;
        let rows = shape.first().copied().unwrap_or(0);
        let cols: usize = shape.iter().skip(1).product();
        let groups = scale.shape().get(1).copied().unwrap_or(1);
        let fits = shape.len() == 2
            && scale.dtype() == Dtype::F32
            && scale.shape().first() == Some(&rows)
            && scale.shape().len() <= 2
            && groups > 0
            && cols.is_multiple_of(groups);
        if !fits {
            return Err(EmbedError::Invalid {
                path: scale_path,
                what: "int8 scales",
                reason: format!(
                    "`{scale_name}` is {:?} {:?}; for `{name}` {shape:?} it must be F32 \
                     [{rows}] or [{rows}, groups] with groups dividing {cols}",
                    scale.dtype(),
                    scale.shape()
                ),
            });
        }
        let values: Vec<f32> = scale
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if !values.iter().all(|v| v.is_finite()) {
            return Err(EmbedError::NonFinite {
                path: self.path_of(name),
                name: name.to_string(),
            });
        }
        Ok((values, groups))
    }

    /// The matrices `names`, each [`rows`, `cols`] (a Linear layer's weight, out x in), stacked
    /// along their rows and transposed: one f32 tensor [`cols`, `rows` x names], contiguous,
    /// the layout the products read fastest. int8 matrices are decoded straight into it in one
    /// pass (`int8_weights`); float ones go through candle.
    pub fn get_transposed(
        &mut self,
        names: &[&str],
        rows: usize,
        cols: usize,
    ) -> Result<Tensor, EmbedError> {
        let all_int8 = names.iter().all(|n| {
            self.tensors
                .get(*n)
                .is_some_and(|(_, v)| v.dtype() == Dtype::I8 && v.shape() == [rows, cols])
        });
        if !all_int8 {
            let parts = names
                .iter()
                .map(|n| self.get(n, &[rows, cols]))
                .collect::<Result<Vec<_>, _>>()?;
            let stacked = Tensor::cat(&parts, 0).and_then(|w| w.t()?.contiguous());
            return Ok(stacked?);
        }
        let out_cols = rows * names.len();
        let mut out = vec![0f32; cols * out_cols];
        for (i, name) in names.iter().enumerate() {
            let (scale, groups) = self.take_scales(name, &[rows, cols])?;
            let (_, view) = self.tensors.remove(*name).expect("checked above");
            int8_weights::dequantize_transposed(
                view.data(),
                &scale,
                rows,
                cols,
                cols / groups,
                &mut out,
                out_cols,
                i * rows,
            );
        }
        Ok(Tensor::from_vec(out, (cols, out_cols), &self.device)?)
    }
}

/// Names every shard, for a tensor found in none of them.
trait ConcatNames {
    fn concat_names(&self) -> PathBuf;
}

impl ConcatNames for Vec<PathBuf> {
    fn concat_names(&self) -> PathBuf {
        match self.as_slice() {
            [one] => one.clone(),
            all => PathBuf::from(
                all.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

/// The shards of the model folder at `dir`: those named by `model.safetensors.index.json` (as
/// Hugging Face writes it, for a model split into files under 50 MB), else `model.safetensors`.
pub fn shard_paths(dir: &Path) -> Result<Vec<PathBuf>, EmbedError> {
    let index = dir.join("model.safetensors.index.json");
    let text = match std::fs::read(&index) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(vec![dir.join("model.safetensors")])
        }
        Err(source) => {
            return Err(EmbedError::Read {
                path: index,
                source,
            })
        }
    };
    shards_of_index(&text, &index).map(|names| names.iter().map(|n| dir.join(n)).collect())
}

/// The distinct file names of an index's `weight_map`, sorted; each a plain file name (no
/// folder, so an index cannot point outside its model's folder).
pub fn shards_of_index(text: &[u8], path: &Path) -> Result<Vec<String>, EmbedError> {
    let invalid = |reason: String| EmbedError::Invalid {
        path: path.to_path_buf(),
        what: "safetensors index",
        reason,
    };
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let index: Index = serde_json::from_slice(text).map_err(|e| invalid(e.to_string()))?;
    let mut files: Vec<String> = index.weight_map.into_values().collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(invalid("`weight_map` names no file".to_string()));
    }
    if let Some(bad) = files.iter().find(|f| {
        f.is_empty()
            || f.contains(['/', '\\'])
            || f.starts_with('.')
            || !f.ends_with(".safetensors")
    }) {
        return Err(invalid(format!(
            "{bad:?} is not a file name of this folder ending in .safetensors"
        )));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tensor to write: name, dtype, shape, bytes.
    type Stored<'a> = (&'a str, Dtype, Vec<usize>, Vec<u8>);

    fn file(tensors: &[Stored<'_>]) -> Vec<u8> {
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| {
                (
                    n.to_string(),
                    safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn int8_groups_dequantize_to_q_times_their_groups_scale() {
        // 2 rows of 4 weights, groups of 2: scales [[1, 0.5], [2, 0.25]].
        let q: Vec<u8> = [1i8, -1, 127, -128, 3, -3, 4, -4]
            .iter()
            .map(|&x| x as u8)
            .collect();
        let bytes = file(&[
            ("w", Dtype::I8, vec![2, 4], q),
            (
                "w.scale",
                Dtype::F32,
                vec![2, 2],
                f32_bytes(&[1.0, 0.5, 2.0, 0.25]),
            ),
            ("b", Dtype::F32, vec![2], f32_bytes(&[0.5, -0.5])),
        ]);
        let shards = [(PathBuf::from("m.safetensors"), bytes.as_slice())];
        let mut w = Weights::read(&shards).unwrap();
        let t = w.get("w", &[2, 4]).unwrap();
        assert_eq!(
            t.to_vec2::<f32>().unwrap(),
            vec![vec![1.0, -1.0, 63.5, -64.0], vec![6.0, -6.0, 1.0, -1.0]]
        );
        assert_eq!(
            w.get("b", &[2]).unwrap().to_vec1::<f32>().unwrap(),
            vec![0.5, -0.5]
        );
        // Taken once: a second get is a missing tensor naming the file.
        let again = w.get("w", &[2, 4]).unwrap_err().to_string();
        assert!(
            again.contains("m.safetensors") && again.contains("`w`"),
            "{again}"
        );
    }

    #[test]
    fn stacked_int8_matrices_are_decoded_transposed_like_the_float_path() {
        // Two 3 x 4 int8 matrices (groups of 2) and the same values stored as f32: stacking and
        // transposing must give the same tensor either way.
        let q: Vec<u8> = (0..12).map(|i: i32| (i * 37 - 200) as i8 as u8).collect();
        let scales = [0.5f32, 2.0, 1.0, 0.25, 4.0, 0.125];
        let value = |i: usize| f32::from(q[i] as i8) * scales[i / 2];
        let floats: Vec<f32> = (0..12).map(value).collect();
        let bytes = file(&[
            ("a", Dtype::I8, vec![3, 4], q.clone()),
            ("a.scale", Dtype::F32, vec![3, 2], f32_bytes(&scales)),
            ("b", Dtype::I8, vec![3, 4], q.clone()),
            ("b.scale", Dtype::F32, vec![3, 2], f32_bytes(&scales)),
            ("fa", Dtype::F32, vec![3, 4], f32_bytes(&floats)),
            ("fb", Dtype::F32, vec![3, 4], f32_bytes(&floats)),
        ]);
        let shards = [(PathBuf::from("m.safetensors"), bytes.as_slice())];
        let mut w = Weights::read(&shards).unwrap();
        let int8 = w.get_transposed(&["a", "b"], 3, 4).unwrap();
        let float = w.get_transposed(&["fa", "fb"], 3, 4).unwrap();
        assert_eq!(int8.dims(), [4, 6]);
        assert_eq!(
            int8.to_vec2::<f32>().unwrap(),
            float.to_vec2::<f32>().unwrap()
        );
        assert_eq!(int8.to_vec2::<f32>().unwrap()[1][0], value(1));
    }

    #[test]
    fn bad_scales_shapes_dtypes_and_non_finite_values_name_file_and_tensor() {
        let q = vec![1u8; 8];
        let cases: Vec<(Vec<Stored<'_>>, &str)> = vec![
            (
                vec![("w", Dtype::I8, vec![2, 4], q.clone())],
                "`w.scale` is missing",
            ),
            (
                vec![
                    ("w", Dtype::I8, vec![2, 4], q.clone()),
                    ("w.scale", Dtype::F32, vec![2, 3], f32_bytes(&[1.0; 6])),
                ],
                "groups dividing 4",
            ),
            (
                vec![("w", Dtype::F32, vec![4, 2], f32_bytes(&[1.0; 8]))],
                "expected [2, 4]",
            ),
            (vec![("w", Dtype::U8, vec![2, 4], q.clone())], "U8"),
            (
                vec![(
                    "w",
                    Dtype::F32,
                    vec![2, 4],
                    f32_bytes(&[1.0, f32::NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
                )],
                "NaN",
            ),
        ];
        for (tensors, expected) in cases {
            let bytes = file(&tensors);
            let shards = [(PathBuf::from("m.safetensors"), bytes.as_slice())];
            let err = Weights::read(&shards)
                .unwrap()
                .get("w", &[2, 4])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("m.safetensors") && err.contains(expected),
                "{err} lacks {expected}"
            );
        }
        let shards = [(PathBuf::from("x.safetensors"), b"not a file".as_slice())];
        assert!(Weights::read(&shards).is_err());
    }

    #[test]
    fn a_tensor_in_two_shards_and_an_index_pointing_outside_its_folder_are_refused() {
        let one = file(&[("w", Dtype::F32, vec![1], f32_bytes(&[1.0]))]);
        let shards = [
            (PathBuf::from("a.safetensors"), one.as_slice()),
            (PathBuf::from("b.safetensors"), one.as_slice()),
        ];
        let err = Weights::read(&shards).err().unwrap().to_string();
        assert!(err.contains("also in a.safetensors"), "{err}");
        let p = Path::new("index.json");
        for bad in [
            r#"{"weight_map": {"w": "../other.safetensors"}}"#,
            r#"{"weight_map": {"w": "model.bin"}}"#,
            r#"{"weight_map": {}}"#,
        ] {
            assert!(shards_of_index(bad.as_bytes(), p).is_err(), "{bad}");
        }
        assert_eq!(
            shards_of_index(
                br#"{"weight_map": {"a": "m-2.safetensors", "b": "m-1.safetensors", "c": "m-2.safetensors"}}"#,
                p
            )
            .unwrap(),
            ["m-1.safetensors", "m-2.safetensors"]
        );
    }
}
