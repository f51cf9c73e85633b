//! Where training runs: the CPU, or an NVIDIA GPU through candle's CUDA backend.
//!
//! The choice is made once per job and every tensor of the job is created on it (batches, masks,
//! parameters); files are read to the CPU and moved. A binary built without the `cuda` feature, a
//! machine without a GPU, or a driver that does not match the build is an ordinary, named error that
//! says what to do (`--device cpu`), never a panic. `auto` takes the GPU when one opens and says why
//! it did not otherwise.

use std::fmt;

use candle_core::Device;

use super::TrainError;

/// `--device`: what the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The CPU (the default: it needs nothing).
    #[default]
    Cpu,
    /// CUDA device `ordinal`; an error when it cannot be opened.
    Cuda(usize),
    /// CUDA device 0 when this build has CUDA and a GPU opens, else the CPU.
    Auto,
}

impl DeviceChoice {
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            "auto" => Ok(DeviceChoice::Auto),
            _ => match text.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(ordinal)) => Ok(DeviceChoice::Cuda(ordinal)),
                _ => Err(format!("`{text}` is not a device (expected cpu, cuda, cuda:N or auto)")),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
            DeviceChoice::Auto => f.write_str("auto"),
        }
    }
}

/// The device a job runs on, and a line for the log saying why.
#[derive(Debug, Clone)]
pub struct OpenedDevice {
    pub device: Device,
    /// `cpu` or `cuda:N` (recorded in run.json).
    pub name: String,
    /// Why `auto` fell back to the CPU, when it did.
    pub note: Option<String>,
}

/// Opens what `choice` asks for, for training.
pub fn open(choice: DeviceChoice) -> Result<OpenedDevice, TrainError> {
    open_for(choice, "train")
}

/// Opens what `choice` asks for; `job` is the command whose fallback an error names (`train`,
/// `encode`: "encode on the CPU with --device cpu").
pub fn open_for(choice: DeviceChoice, job: &str) -> Result<OpenedDevice, TrainError> {
    let cpu = |note| OpenedDevice { device: Device::Cpu, name: "cpu".into(), note };
    match choice {
        DeviceChoice::Cpu => Ok(cpu(None)),
        DeviceChoice::Cuda(ordinal) => open_cuda(ordinal).map_err(|reason| TrainError::Device {
            asked: choice.to_string(),
            reason: format!("{reason}; {job} on the CPU with --device cpu"),
        }),
        DeviceChoice::Auto => {
            Ok(open_cuda(0).unwrap_or_else(|reason| cpu(Some(format!("auto: on the CPU ({reason})")))))
        }
    }
}

/// `cpu` or `cuda:N`: how run.json names the device a run trained on.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<OpenedDevice, String> {
    // The binary links libcuda.so.1 (cudarc's dynamic linking): without a driver it does not start
    // at all, and the loader names the library; here the driver is there and answers.
    match Device::new_cuda(ordinal) {
        Ok(device) => Ok(OpenedDevice { device, name: format!("cuda:{ordinal}"), note: None }),
        Err(err) => {
            // candle appends a backtrace to driver errors: the first line is the driver's word.
            let first_line = err.to_string().lines().next().unwrap_or_default().to_string();
            Err(format!(
                "CUDA device {ordinal} could not be opened: {first_line} (is there an NVIDIA GPU, and a driver ≥ 580 for CUDA 13.0?)"
            ))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(_ordinal: usize) -> Result<OpenedDevice, String> {
    Err("this omakase was built without CUDA (build one with `bash scripts/build-cuda.sh`)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_and_names_a_bad_one() {
        assert_eq!(DeviceChoice::parse("cpu"), Ok(DeviceChoice::Cpu));
        assert_eq!(DeviceChoice::parse("cuda"), Ok(DeviceChoice::Cuda(0)));
        assert_eq!(DeviceChoice::parse("cuda:3"), Ok(DeviceChoice::Cuda(3)));
        assert_eq!(DeviceChoice::parse("auto"), Ok(DeviceChoice::Auto));
        let err = DeviceChoice::parse("gpu").unwrap_err();
        assert!(err.contains("`gpu`") && err.contains("cuda:N"), "{err}");
        assert!(DeviceChoice::parse("cuda:x").is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_named_error_and_auto_falls_back() {
        let err = open(DeviceChoice::Cuda(0)).unwrap_err().to_string();
        assert!(err.contains("built without CUDA") && err.contains("--device cpu"), "{err}");
        let auto = open(DeviceChoice::Auto).unwrap();
        assert!(auto.device.is_cpu());
        assert!(auto.note.unwrap().contains("built without CUDA"));
    }
}
