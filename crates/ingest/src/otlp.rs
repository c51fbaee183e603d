//! OpenTelemetry profiles in: an OTLP `ExportProfilesServiceRequest`
//! (`opentelemetry/proto/collector/profiles/v1development/profiles_service.proto`, as
//! opentelemetry-proto 1.8 / the Python package 1.45 define it) turned into pprof profiles.
//!
//! Every field number this decoder reads is in the module [`f`], so a new revision of the
//! (still development) schema is a change there. The request's `dictionary` holds the tables
//! (strings, mappings, locations, functions, attributes, stacks) every profile indexes; by the
//! schema's convention entry 0 of each table is the zero value.
//!
//! The schema gives each OTLP profile one sample type; pprof profiles have several columns.
//! Consecutive profiles of one scope that agree in time, duration, period and in every
//! sample's stack and attributes are joined again as the columns of one pprof profile (how
//! a pprof file's columns are sent as OTLP profiles), so a pprof sent as OTLP comes back
//! whole.
//!
//! What pprof has and OTLP does not name is carried in attributes (docs/adr/0024):
//! mapping `process.executable.build_id.gnu` (build id) and `pprof.mapping.has_functions`,
//! `…has_filenames`, `…has_line_numbers`, `…has_inline_frames` (bool); location
//! `pprof.location.is_folded` (bool); profile `pprof.profile.comment` (string, repeated),
//! `pprof.profile.drop_frames`, `pprof.profile.keep_frames`, `pprof.profile.doc_url`,
//! `pprof.profile.default_sample_type`.

use std::collections::{BTreeMap, HashMap};

use gocost_pprof::protowire::{Field, LEN, Reader, WireError};
use gocost_pprof::{
    Function, Label, LabelValue, Line, Location, Mapping, Profile, Sample, Str, ValueType,
    canonicalize_labels,
};

use crate::{Error, JOB_LABEL, Limits, Pushed, kind_for_profile, series_labels};

/// The schema's field numbers (opentelemetry-proto `v1development`, release 1.8).
pub mod f {
    pub const REQUEST_RESOURCE_PROFILES: u64 = 1;
    pub const REQUEST_DICTIONARY: u64 = 2;

    pub const DICT_MAPPING_TABLE: u64 = 1;
    pub const DICT_LOCATION_TABLE: u64 = 2;
    pub const DICT_FUNCTION_TABLE: u64 = 3;
    pub const DICT_STRING_TABLE: u64 = 5;
    pub const DICT_ATTRIBUTE_TABLE: u64 = 6;
    pub const DICT_STACK_TABLE: u64 = 7;

    pub const RESOURCE_PROFILES_RESOURCE: u64 = 1;
    pub const RESOURCE_PROFILES_SCOPE_PROFILES: u64 = 2;
    pub const RESOURCE_ATTRIBUTES: u64 = 1;
    pub const SCOPE_PROFILES_SCOPE: u64 = 1;
    pub const SCOPE_PROFILES_PROFILES: u64 = 2;
    pub const SCOPE_NAME: u64 = 1;
    pub const SCOPE_VERSION: u64 = 2;
    pub const SCOPE_ATTRIBUTES: u64 = 3;

    pub const KEY_VALUE_KEY: u64 = 1;
    pub const KEY_VALUE_VALUE: u64 = 2;
    pub const KEY_VALUE_KEY_STRINDEX: u64 = 3;
    pub const ANY_STRING: u64 = 1;
    pub const ANY_BOOL: u64 = 2;
    pub const ANY_INT: u64 = 3;
    pub const ANY_DOUBLE: u64 = 4;
    pub const ANY_STRING_STRINDEX: u64 = 8;

    pub const PROFILE_SAMPLE_TYPE: u64 = 1;
    pub const PROFILE_SAMPLES: u64 = 2;
    pub const PROFILE_TIME_UNIX_NANO: u64 = 3;
    pub const PROFILE_DURATION_NANO: u64 = 4;
    pub const PROFILE_PERIOD_TYPE: u64 = 5;
    pub const PROFILE_PERIOD: u64 = 6;
    pub const PROFILE_ATTRIBUTE_INDICES: u64 = 11;

    pub const VALUE_TYPE_TYPE_STRINDEX: u64 = 1;
    pub const VALUE_TYPE_UNIT_STRINDEX: u64 = 2;

    pub const SAMPLE_STACK_INDEX: u64 = 1;
    pub const SAMPLE_ATTRIBUTE_INDICES: u64 = 2;
    pub const SAMPLE_VALUES: u64 = 4;
    pub const SAMPLE_TIMESTAMPS: u64 = 5;

    pub const MAPPING_MEMORY_START: u64 = 1;
    pub const MAPPING_MEMORY_LIMIT: u64 = 2;
    pub const MAPPING_FILE_OFFSET: u64 = 3;
    pub const MAPPING_FILENAME_STRINDEX: u64 = 4;
    pub const MAPPING_ATTRIBUTE_INDICES: u64 = 5;

    pub const STACK_LOCATION_INDICES: u64 = 1;

    pub const LOCATION_MAPPING_INDEX: u64 = 1;
    pub const LOCATION_ADDRESS: u64 = 2;
    pub const LOCATION_LINES: u64 = 3;
    pub const LOCATION_ATTRIBUTE_INDICES: u64 = 4;

    pub const LINE_FUNCTION_INDEX: u64 = 1;
    pub const LINE_LINE: u64 = 2;
    pub const LINE_COLUMN: u64 = 3;

    pub const FUNCTION_NAME_STRINDEX: u64 = 1;
    pub const FUNCTION_SYSTEM_NAME_STRINDEX: u64 = 2;
    pub const FUNCTION_FILENAME_STRINDEX: u64 = 3;
    pub const FUNCTION_START_LINE: u64 = 4;

    pub const KVU_KEY_STRINDEX: u64 = 1;
    pub const KVU_VALUE: u64 = 2;
    pub const KVU_UNIT_STRINDEX: u64 = 3;
}

/// The series label of `service.name`'s absence (OpenTelemetry's default service name).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Most profiles one request may carry.
const MAX_PROFILES: usize = 10_000;

/// What a request turned into: the profiles to store, and the profiles refused with why
/// (answered in `partial_success`).
#[derive(Debug, Default)]
pub struct Export {
    pub profiles: Vec<Pushed>,
    pub rejected: u64,
    pub errors: Vec<String>,
}

fn wire(at: &str, (kind, offset): WireError) -> Error {
    Error::Malformed(format!("{at}: {kind} (byte offset {offset})"))
}

/// Reads every field of a message, calling `each` with its field.
fn fields<'a>(
    r: &mut Reader<'a>,
    at: &str,
    mut each: impl FnMut(&Field<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    while !r.at_end() {
        let fl = r.field().map_err(|e| wire(at, e))?;
        each(&fl)?;
    }
    Ok(())
}

fn int(fl: &Field<'_>, at: &str, name: &str) -> Result<u64, Error> {
    fl.int().map_err(|e| wire(&format!("{at}.{name}"), e))
}

fn fixed64(fl: &Field<'_>, at: &str, name: &str) -> Result<u64, Error> {
    if fl.wire != gocost_pprof::protowire::FIXED64 {
        return Err(Error::Malformed(format!(
            "{at}.{name}: wire type {} where fixed64 (1) belongs (byte offset {})",
            fl.wire, fl.offset
        )));
    }
    Ok(fl.varint)
}

fn msg<'a>(fl: &'a Field<'a>, at: &str) -> Result<Reader<'a>, Error> {
    fl.message().map_err(|e| wire(at, e))
}

fn text<'a>(fl: &Field<'a>, at: &str) -> Result<&'a str, Error> {
    if fl.wire != LEN {
        return Err(Error::Malformed(format!(
            "{at}: wire type {} where a string belongs (byte offset {})",
            fl.wire, fl.offset
        )));
    }
    std::str::from_utf8(fl.bytes).map_err(|e| {
        Error::Malformed(format!(
            "{at}: not UTF-8 (byte offset {})",
            fl.payload_offset + e.valid_up_to()
        ))
    })
}

fn ints(fl: &Field<'_>, at: &str, out: &mut Vec<u64>) -> Result<(), Error> {
    fl.push_ints(out, |v| v).map_err(|e| wire(at, e))
}

/// A table index (an `int32` on the wire): negative ones are refused.
fn index(v: u64, at: &str) -> Result<u32, Error> {
    u32::try_from(v as i64)
        .ok()
        .filter(|i| i32::try_from(*i).is_ok())
        .ok_or_else(|| Error::Malformed(format!("{at}: index {} is negative", v as i64)))
}

/// An `AnyValue` as far as labels need it.
#[derive(Debug, Clone, PartialEq)]
enum Any {
    None,
    Str(Str),
    StrIdx(u32),
    Bool(bool),
    Int(i64),
    Double(f64),
}

fn any_value(r: &mut Reader<'_>, at: &str) -> Result<Any, Error> {
    let mut v = Any::None;
    fields(r, at, |fl| {
        v = match fl.num {
            f::ANY_STRING => Any::Str(text(fl, &format!("{at}.string_value"))?.into()),
            f::ANY_BOOL => Any::Bool(int(fl, at, "bool_value")? != 0),
            f::ANY_INT => Any::Int(int(fl, at, "int_value")? as i64),
            f::ANY_DOUBLE => Any::Double(f64::from_bits(fixed64(fl, at, "double_value")?)),
            f::ANY_STRING_STRINDEX => Any::StrIdx(index(
                int(fl, at, "string_value_strindex")?,
                &format!("{at}.string_value_strindex"),
            )?),
            _ => return Ok(()),
        };
        Ok(())
    })?;
    Ok(v)
}

#[derive(Debug, Default)]
struct OMapping {
    start: u64,
    limit: u64,
    offset: u64,
    filename: u32,
    attrs: Vec<u64>,
}

#[derive(Debug, Default)]
struct OLocation {
    mapping: u32,
    address: u64,
    lines: Vec<(u32, i64, i64)>,
    attrs: Vec<u64>,
}

#[derive(Debug, Default)]
struct OFunction {
    name: u32,
    system_name: u32,
    filename: u32,
    start_line: i64,
}

#[derive(Debug)]
struct OAttr {
    key: u32,
    value: Any,
    unit: u32,
}

/// The request's `ProfilesDictionary`.
#[derive(Debug, Default)]
struct Dict {
    strings: Vec<Str>,
    mappings: Vec<OMapping>,
    locations: Vec<OLocation>,
    functions: Vec<OFunction>,
    attrs: Vec<OAttr>,
    stacks: Vec<Vec<u64>>,
}

fn dictionary(r: &mut Reader<'_>) -> Result<Dict, Error> {
    let mut d = Dict::default();
    let at = "ProfilesDictionary";
    fields(r, at, |fl| {
        match fl.num {
            f::DICT_STRING_TABLE => {
                let at = format!("{at}.string_table[{}]", d.strings.len());
                d.strings.push(text(fl, &at)?.into());
            }
            f::DICT_MAPPING_TABLE => {
                let at = format!("{at}.mapping_table[{}]", d.mappings.len());
                let mut m = OMapping::default();
                fields(&mut msg(fl, &at)?, &at, |fl| {
                    match fl.num {
                        f::MAPPING_MEMORY_START => m.start = int(fl, &at, "memory_start")?,
                        f::MAPPING_MEMORY_LIMIT => m.limit = int(fl, &at, "memory_limit")?,
                        f::MAPPING_FILE_OFFSET => m.offset = int(fl, &at, "file_offset")?,
                        f::MAPPING_FILENAME_STRINDEX => {
                            m.filename = index(int(fl, &at, "filename_strindex")?, &at)?
                        }
                        f::MAPPING_ATTRIBUTE_INDICES => ints(fl, &at, &mut m.attrs)?,
                        _ => {}
                    }
                    Ok(())
                })?;
                d.mappings.push(m);
            }
            f::DICT_LOCATION_TABLE => {
                let at = format!("{at}.location_table[{}]", d.locations.len());
                let mut l = OLocation::default();
                fields(&mut msg(fl, &at)?, &at, |fl| {
                    match fl.num {
                        f::LOCATION_MAPPING_INDEX => {
                            l.mapping = index(int(fl, &at, "mapping_index")?, &at)?
                        }
                        f::LOCATION_ADDRESS => l.address = int(fl, &at, "address")?,
                        f::LOCATION_ATTRIBUTE_INDICES => ints(fl, &at, &mut l.attrs)?,
                        f::LOCATION_LINES => {
                            let at = format!("{at}.lines[{}]", l.lines.len());
                            let mut line = (0u32, 0i64, 0i64);
                            fields(&mut msg(fl, &at)?, &at, |fl| {
                                match fl.num {
                                    f::LINE_FUNCTION_INDEX => {
                                        line.0 = index(int(fl, &at, "function_index")?, &at)?
                                    }
                                    f::LINE_LINE => line.1 = int(fl, &at, "line")? as i64,
                                    f::LINE_COLUMN => line.2 = int(fl, &at, "column")? as i64,
                                    _ => {}
                                }
                                Ok(())
                            })?;
                            l.lines.push(line);
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                d.locations.push(l);
            }
            f::DICT_FUNCTION_TABLE => {
                let at = format!("{at}.function_table[{}]", d.functions.len());
                let mut fun = OFunction::default();
                fields(&mut msg(fl, &at)?, &at, |fl| {
                    match fl.num {
                        f::FUNCTION_NAME_STRINDEX => {
                            fun.name = index(int(fl, &at, "name_strindex")?, &at)?
                        }
                        f::FUNCTION_SYSTEM_NAME_STRINDEX => {
                            fun.system_name = index(int(fl, &at, "system_name_strindex")?, &at)?
                        }
                        f::FUNCTION_FILENAME_STRINDEX => {
                            fun.filename = index(int(fl, &at, "filename_strindex")?, &at)?
                        }
                        f::FUNCTION_START_LINE => {
                            fun.start_line = int(fl, &at, "start_line")? as i64
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                d.functions.push(fun);
            }
            f::DICT_ATTRIBUTE_TABLE => {
                let at = format!("{at}.attribute_table[{}]", d.attrs.len());
                let mut a = OAttr {
                    key: 0,
                    value: Any::None,
                    unit: 0,
                };
                fields(&mut msg(fl, &at)?, &at, |fl| {
                    match fl.num {
                        f::KVU_KEY_STRINDEX => a.key = index(int(fl, &at, "key_strindex")?, &at)?,
                        f::KVU_UNIT_STRINDEX => {
                            a.unit = index(int(fl, &at, "unit_strindex")?, &at)?
                        }
                        f::KVU_VALUE => {
                            let at = format!("{at}.value");
                            a.value = any_value(&mut msg(fl, &at)?, &at)?
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                d.attrs.push(a);
            }
            f::DICT_STACK_TABLE => {
                let at = format!("{at}.stack_table[{}]", d.stacks.len());
                let mut s = Vec::new();
                fields(&mut msg(fl, &at)?, &at, |fl| {
                    if fl.num == f::STACK_LOCATION_INDICES {
                        ints(fl, &format!("{at}.location_indices"), &mut s)?;
                    }
                    Ok(())
                })?;
                d.stacks.push(s);
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(d)
}

impl Dict {
    /// String `i` (index 0 is `""` even when the table is empty: the zero value).
    fn string(&self, i: u32, at: &str) -> Result<Str, Error> {
        if i == 0 && self.strings.is_empty() {
            return Ok(Str::from(""));
        }
        self.strings.get(i as usize).cloned().ok_or_else(|| {
            Error::Malformed(format!(
                "{at}: string index {i} past the string_table's {} entries",
                self.strings.len()
            ))
        })
    }

    fn attr(&self, i: u64, at: &str) -> Result<&OAttr, Error> {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.attrs.get(i))
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "{at}: attribute index {i} past the attribute_table's {} entries",
                    self.attrs.len()
                ))
            })
    }

    /// The string an attribute value holds, if a string.
    fn attr_str(&self, v: &Any, at: &str) -> Result<Option<Str>, Error> {
        Ok(match v {
            Any::Str(s) => Some(s.clone()),
            Any::StrIdx(i) => Some(self.string(*i, at)?),
            _ => None,
        })
    }

    /// `(key, value)` of the dictionary attributes `idx`, keys resolved.
    fn attrs_of<'a>(&'a self, idx: &[u64], at: &str) -> Result<Vec<(Str, &'a OAttr)>, Error> {
        idx.iter()
            .map(|&i| {
                let a = self.attr(i, at)?;
                Ok((self.string(a.key, at)?, a))
            })
            .collect()
    }
}

/// `KeyValue`s (resource and scope attributes) as string pairs: strings as they are,
/// integers, booleans and doubles as text; others skipped.
fn key_values(r: &mut Reader<'_>, at: &str, d: &Dict) -> Result<(String, Option<String>), Error> {
    let (mut key, mut value) = (String::new(), None);
    fields(r, at, |fl| {
        match fl.num {
            f::KEY_VALUE_KEY => key = text(fl, &format!("{at}.key"))?.to_string(),
            f::KEY_VALUE_KEY_STRINDEX => {
                key = d
                    .string(index(int(fl, at, "key_strindex")?, at)?, at)?
                    .to_string()
            }
            f::KEY_VALUE_VALUE => {
                let at = format!("{at}.value");
                value = match any_value(&mut msg(fl, &at)?, &at)? {
                    Any::Str(s) => Some(s.to_string()),
                    Any::StrIdx(i) => Some(d.string(i, &at)?.to_string()),
                    Any::Int(v) => Some(v.to_string()),
                    Any::Bool(b) => Some(b.to_string()),
                    Any::Double(x) => Some(x.to_string()),
                    Any::None => None,
                };
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok((key, value))
}

/// One OTLP profile as read, before conversion.
#[derive(Debug, Default)]
struct OProfile {
    sample_type: (u32, u32),
    samples: Vec<OSample>,
    time: u64,
    duration: u64,
    period_type: (u32, u32),
    period: i64,
    attrs: Vec<u64>,
    at: String,
}

#[derive(Debug, Default, PartialEq)]
struct OSample {
    stack: u32,
    attrs: Vec<u64>,
    values: Vec<u64>,
    timestamps: usize,
}

fn value_type(r: &mut Reader<'_>, at: &str) -> Result<(u32, u32), Error> {
    let mut vt = (0, 0);
    fields(r, at, |fl| {
        match fl.num {
            f::VALUE_TYPE_TYPE_STRINDEX => vt.0 = index(int(fl, at, "type_strindex")?, at)?,
            f::VALUE_TYPE_UNIT_STRINDEX => vt.1 = index(int(fl, at, "unit_strindex")?, at)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(vt)
}

fn profile(r: &mut Reader<'_>, at: String) -> Result<OProfile, Error> {
    let mut p = OProfile::default();
    fields(r, &at, |fl| {
        match fl.num {
            f::PROFILE_SAMPLE_TYPE => {
                let at = format!("{at}.sample_type");
                p.sample_type = value_type(&mut msg(fl, &at)?, &at)?
            }
            f::PROFILE_PERIOD_TYPE => {
                let at = format!("{at}.period_type");
                p.period_type = value_type(&mut msg(fl, &at)?, &at)?
            }
            f::PROFILE_TIME_UNIX_NANO => p.time = fixed64(fl, &at, "time_unix_nano")?,
            f::PROFILE_DURATION_NANO => p.duration = int(fl, &at, "duration_nano")?,
            f::PROFILE_PERIOD => p.period = int(fl, &at, "period")? as i64,
            f::PROFILE_ATTRIBUTE_INDICES => {
                ints(fl, &format!("{at}.attribute_indices"), &mut p.attrs)?
            }
            f::PROFILE_SAMPLES => {
                let at = format!("{at}.samples[{}]", p.samples.len());
                let mut s = OSample::default();
                let mut ts = Vec::new();
                fields(&mut msg(fl, &at)?, &at, |fl| {
                    match fl.num {
                        f::SAMPLE_STACK_INDEX => {
                            s.stack = index(int(fl, &at, "stack_index")?, &at)?
                        }
                        f::SAMPLE_ATTRIBUTE_INDICES => {
                            ints(fl, &format!("{at}.attribute_indices"), &mut s.attrs)?
                        }
                        f::SAMPLE_VALUES => ints(fl, &format!("{at}.values"), &mut s.values)?,
                        f::SAMPLE_TIMESTAMPS => {
                            // Packed fixed64: only their number matters (pprof has no
                            // per-sample times).
                            if fl.wire == LEN {
                                if fl.bytes.len() % 8 != 0 {
                                    return Err(Error::Malformed(format!(
                                        "{at}.timestamps_unix_nano: {} bytes, not a multiple of 8 (byte offset {})",
                                        fl.bytes.len(),
                                        fl.offset
                                    )));
                                }
                                ts.push(fl.bytes.len() / 8);
                            } else {
                                fixed64(fl, &at, "timestamps_unix_nano")?;
                                ts.push(1);
                            }
                        }
                        _ => {}
                    }
                    Ok(())
                })?;
                s.timestamps = ts.iter().sum();
                p.samples.push(s);
            }
            _ => {}
        }
        Ok(())
    })?;
    p.at = at;
    Ok(p)
}

/// Whether `b` can be `a`'s next column.
fn same_samples(a: &OProfile, b: &OProfile) -> bool {
    a.time == b.time
        && a.duration == b.duration
        && a.period_type == b.period_type
        && a.period == b.period
        && a.attrs == b.attrs
        && a.samples.len() == b.samples.len()
        && a.samples
            .iter()
            .zip(&b.samples)
            .all(|(x, y)| x.stack == y.stack && x.attrs == y.attrs)
}

/// Builds pprof profiles from OTLP ones: only the dictionary entries they use, renumbered.
struct Builder<'a> {
    d: &'a Dict,
    p: Profile,
    locs: HashMap<u32, u32>,
    funcs: HashMap<u32, u32>,
    maps: HashMap<u32, Option<u32>>,
}

const PPROF: &str = "pprof.";

impl<'a> Builder<'a> {
    fn new(d: &'a Dict) -> Self {
        Builder {
            d,
            p: Profile::default(),
            locs: HashMap::new(),
            funcs: HashMap::new(),
            maps: HashMap::new(),
        }
    }

    fn flag(&self, attrs: &[u64], key: &str, at: &str) -> Result<bool, Error> {
        for (k, a) in self.d.attrs_of(attrs, at)? {
            if &*k == key {
                return Ok(matches!(a.value, Any::Bool(true)));
            }
        }
        Ok(false)
    }

    fn mapping(&mut self, i: u32) -> Result<Option<u32>, Error> {
        if let Some(&m) = self.maps.get(&i) {
            return Ok(m);
        }
        let at = format!("ProfilesDictionary.mapping_table[{i}]");
        // Entry 0 is the zero value, even when the table is left out.
        let zero_entry = OMapping::default();
        let om = match self.d.mappings.get(i as usize) {
            None if i == 0 => Some(&zero_entry),
            m => m,
        };
        let om = om.ok_or_else(|| {
            Error::Malformed(format!(
                "{at}: past the mapping_table's {} entries",
                self.d.mappings.len()
            ))
        })?;
        let zero = om.start == 0
            && om.limit == 0
            && om.offset == 0
            && om.filename == 0
            && om.attrs.is_empty();
        let idx = if zero {
            None
        } else {
            let mut m = Mapping {
                id: self.p.mapping.len() as u64 + 1,
                memory_start: om.start,
                memory_limit: om.limit,
                file_offset: om.offset,
                filename: self.d.string(om.filename, &at)?,
                ..Default::default()
            };
            for (k, a) in self.d.attrs_of(&om.attrs, &at)? {
                let on = matches!(a.value, Any::Bool(true));
                match &*k {
                    "process.executable.build_id.gnu"
                    | "process.executable.build_id.go"
                    | "process.executable.build_id.htlhash" => {
                        if m.build_id.is_empty()
                            && let Some(s) = self.d.attr_str(&a.value, &at)?
                        {
                            m.build_id = s;
                        }
                    }
                    "pprof.mapping.has_functions" => m.has_functions = on,
                    "pprof.mapping.has_filenames" => m.has_filenames = on,
                    "pprof.mapping.has_line_numbers" => m.has_line_numbers = on,
                    "pprof.mapping.has_inline_frames" => m.has_inline_frames = on,
                    _ => {}
                }
            }
            self.p.mapping.push(m);
            Some(self.p.mapping.len() as u32 - 1)
        };
        self.maps.insert(i, idx);
        Ok(idx)
    }

    fn function(&mut self, i: u32) -> Result<u32, Error> {
        if let Some(&f) = self.funcs.get(&i) {
            return Ok(f);
        }
        let at = format!("ProfilesDictionary.function_table[{i}]");
        let zero_entry = OFunction::default();
        let of = match self.d.functions.get(i as usize) {
            None if i == 0 => Some(&zero_entry),
            f => f,
        };
        let of = of.ok_or_else(|| {
            Error::Malformed(format!(
                "{at}: past the function_table's {} entries",
                self.d.functions.len()
            ))
        })?;
        self.p.function.push(Function {
            id: self.p.function.len() as u64 + 1,
            name: self.d.string(of.name, &at)?,
            system_name: self.d.string(of.system_name, &at)?,
            filename: self.d.string(of.filename, &at)?,
            start_line: of.start_line,
        });
        let idx = self.p.function.len() as u32 - 1;
        self.funcs.insert(i, idx);
        Ok(idx)
    }

    fn location(&mut self, i: u64) -> Result<u32, Error> {
        let at = format!("ProfilesDictionary.location_table[{i}]");
        let ol = usize::try_from(i)
            .ok()
            .and_then(|i| self.d.locations.get(i))
            .ok_or_else(|| {
                Error::Malformed(format!(
                    "{at}: past the location_table's {} entries",
                    self.d.locations.len()
                ))
            })?;
        let key = i as u32;
        if let Some(&l) = self.locs.get(&key) {
            return Ok(l);
        }
        let mapping = self.mapping(ol.mapping)?;
        let mut line = Vec::with_capacity(ol.lines.len());
        for &(fun, ln, col) in &ol.lines {
            line.push(Line {
                function: self.function(fun)?,
                line: ln,
                column: col,
            });
        }
        let is_folded = self.flag(&ol.attrs, "pprof.location.is_folded", &at)?;
        self.p.location.push(Location {
            id: self.p.location.len() as u64 + 1,
            mapping,
            address: ol.address,
            line,
            is_folded,
        });
        let idx = self.p.location.len() as u32 - 1;
        self.locs.insert(key, idx);
        Ok(idx)
    }

    fn value_type(&self, vt: (u32, u32), at: &str) -> Result<ValueType, Error> {
        Ok(ValueType {
            r#type: self.d.string(vt.0, at)?,
            unit: self.d.string(vt.1, at)?,
        })
    }

    /// One pprof profile from OTLP profiles `cols` (one column each, same samples).
    /// `frames` is what is left of the request's budget of stack frames (a short sample can
    /// name a long shared stack: the budget bounds what the request may expand to).
    fn build(
        mut self,
        cols: &[OProfile],
        limits: &Limits,
        frames: &mut u64,
    ) -> Result<Profile, Error> {
        let Some(first) = cols.first() else {
            return Ok(self.p);
        };
        let at = &first.at;
        for c in cols {
            let st = self.value_type(c.sample_type, &format!("{}.sample_type", c.at))?;
            self.p.sample_type.push(st);
        }
        self.p.time_nanos = i64::try_from(first.time).unwrap_or(i64::MAX);
        self.p.duration_nanos = i64::try_from(first.duration).unwrap_or(i64::MAX);
        self.p.period_type = self.value_type(first.period_type, &format!("{at}.period_type"))?;
        self.p.period = first.period;
        for (k, a) in self
            .d
            .attrs_of(&first.attrs, &format!("{at}.attribute_indices"))?
        {
            let Some(s) = self.d.attr_str(&a.value, at)? else {
                continue;
            };
            match k.strip_prefix(PPROF) {
                Some("profile.comment") => self.p.comments.push(s),
                Some("profile.drop_frames") => self.p.drop_frames = s,
                Some("profile.keep_frames") => self.p.keep_frames = s,
                Some("profile.doc_url") => self.p.doc_url = s,
                Some("profile.default_sample_type") => self.p.default_sample_type = s,
                _ => {}
            }
        }
        for (si, s) in first.samples.iter().enumerate() {
            let sat = format!("{at}.samples[{si}]");
            let stack = self.d.stacks.get(s.stack as usize).ok_or_else(|| {
                Error::Malformed(format!(
                    "{sat}.stack_index: {} past the stack_table's {} entries",
                    s.stack,
                    self.d.stacks.len()
                ))
            })?;
            if stack.len() > limits.max_depth {
                return Err(Error::Malformed(format!(
                    "{sat}: a stack of {} frames; at most {} are accepted",
                    stack.len(),
                    limits.max_depth
                )));
            }
            *frames = frames.checked_sub(stack.len() as u64).ok_or_else(|| {
                Error::TooLarge(format!(
                    "{sat}: the request's samples name more than {} stack frames in all \
                     (max_decompressed / 4)",
                    limits.max_decompressed / 4
                ))
            })?;
            let mut location = Vec::with_capacity(stack.len());
            for &l in stack {
                location.push(self.location(l)?);
            }
            let mut value = Vec::with_capacity(cols.len());
            for c in cols {
                let cs = &c.samples[si];
                let v = match cs.values.as_slice() {
                    [] => cs.timestamps as i64,
                    [v] => *v as i64,
                    vs => {
                        return Err(Error::Malformed(format!(
                            "{}.samples[{si}].values: {} values for the profile's one sample_type",
                            c.at,
                            vs.len()
                        )));
                    }
                };
                value.push(v);
            }
            let mut label = Vec::new();
            for (k, a) in self
                .d
                .attrs_of(&s.attrs, &format!("{sat}.attribute_indices"))?
            {
                let value = match &a.value {
                    Any::Int(v) => LabelValue::Num {
                        value: *v,
                        unit: self.d.string(a.unit, &sat)?,
                    },
                    Any::Bool(b) => LabelValue::Str(b.to_string().into()),
                    Any::Double(x) => LabelValue::Str(x.to_string().into()),
                    v => match self.d.attr_str(v, &sat)? {
                        Some(s) => LabelValue::Str(s),
                        None => continue,
                    },
                };
                label.push(Label { key: k, value });
            }
            canonicalize_labels(&mut label);
            self.p.sample.push(Sample {
                location,
                value,
                label,
            });
        }
        Ok(self.p)
    }
}

/// The instrumentation scope's name and version as attributes (labels `otel_scope_name`,
/// `otel_scope_version`, as Prometheus names them for OTLP metrics); a scope attribute of
/// the same name comes later and wins.
const SCOPE_NAME_LABEL: &str = "otel.scope.name";
const SCOPE_VERSION_LABEL: &str = "otel.scope.version";

/// One scope's profiles with the attributes that become their series labels.
struct Scope<'a> {
    at: &'a str,
    resource: &'a [(String, String)],
    scope: &'a [(String, String)],
    profiles: &'a [OProfile],
}

impl Scope<'_> {
    /// Converts the scope's profiles into `out` (rejected ones counted there); `frames` is
    /// the request's budget of stack frames.
    fn convert(
        &self,
        d: &Dict,
        now_ns: i64,
        limits: &Limits,
        frames: &mut u64,
        out: &mut Export,
    ) -> Result<(), Error> {
        let at = self.at;
        let profiles = self.profiles;
        let pairs = self.resource.iter().chain(self.scope).map(|(k, v)| {
            let k = if k == "service.name" {
                "service_name"
            } else {
                k.as_str()
            };
            (k, v.as_str())
        });
        let mut labels: BTreeMap<String, String> =
            series_labels(pairs, limits).map_err(|e| e.within(&format!("{at}: attributes: ")))?;
        labels
            .entry(JOB_LABEL.to_string())
            .or_insert_with(|| UNKNOWN_SERVICE.to_string());
        let mut i = 0;
        while i < profiles.len() {
            let mut j = i + 1;
            while j < profiles.len() && same_samples(&profiles[i], &profiles[j]) {
                j += 1;
            }
            match Builder::new(d).build(&profiles[i..j], limits, frames) {
                Ok(mut p) => {
                    if p.time_nanos <= 0 {
                        p.time_nanos = now_ns;
                    }
                    out.profiles.push(Pushed {
                        kind: kind_for_profile(&p),
                        labels: labels.clone(),
                        time_ns: p.time_nanos,
                        profile: p,
                    });
                }
                Err(e @ Error::TooLarge(_)) => return Err(e),
                Err(e) => {
                    out.rejected += (j - i) as u64;
                    out.errors.push(e.message().to_string());
                }
            }
            i = j;
        }
        Ok(())
    }
}

/// Parses an `ExportProfilesServiceRequest` (already content-decoded). Wire errors refuse the
/// whole request; a profile whose references do not resolve is rejected alone (counted in
/// [`Export::rejected`]). `now_ns` stands in for a profile without a time.
pub fn parse_export_request(body: &[u8], now_ns: i64, limits: &Limits) -> Result<Export, Error> {
    let at = "ExportProfilesServiceRequest";
    // The dictionary first: every profile indexes it, wherever it is in the bytes.
    let mut dict = None;
    let mut resources = Vec::new();
    fields(&mut Reader::new(body, 0), at, |fl| {
        match fl.num {
            f::REQUEST_DICTIONARY => {
                let at = format!("{at}.dictionary");
                dict = Some(dictionary(&mut msg(fl, &at)?)?);
            }
            f::REQUEST_RESOURCE_PROFILES => {
                msg(fl, &format!("{at}.resource_profiles[{}]", resources.len()))?;
                resources.push((fl.bytes, fl.payload_offset));
            }
            _ => {}
        }
        Ok(())
    })?;
    let d = dict.unwrap_or_default();
    let mut out = Export::default();
    let mut count = 0usize;
    let mut frames = limits.max_decompressed / 4;
    for (ri, (bytes, base)) in resources.into_iter().enumerate() {
        let at = format!("{at}.resource_profiles[{ri}]");
        let mut res_pairs: Vec<(String, String)> = Vec::new();
        let mut scopes = Vec::new();
        fields(&mut Reader::new(bytes, base), &at, |fl| {
            match fl.num {
                f::RESOURCE_PROFILES_RESOURCE => {
                    let at = format!("{at}.resource");
                    fields(&mut msg(fl, &at)?, &at, |fl| {
                        if fl.num == f::RESOURCE_ATTRIBUTES {
                            let at = format!("{at}.attributes[{}]", res_pairs.len());
                            if let (k, Some(v)) = key_values(&mut msg(fl, &at)?, &at, &d)? {
                                res_pairs.push((k, v));
                            }
                        }
                        Ok(())
                    })?;
                }
                f::RESOURCE_PROFILES_SCOPE_PROFILES => {
                    let at = format!("{at}.scope_profiles[{}]", scopes.len());
                    let mut scope_pairs: Vec<(String, String)> = Vec::new();
                    let mut profiles = Vec::new();
                    fields(&mut msg(fl, &at)?, &at, |fl| {
                        match fl.num {
                            f::SCOPE_PROFILES_SCOPE => {
                                let at = format!("{at}.scope");
                                fields(&mut msg(fl, &at)?, &at, |fl| {
                                    match fl.num {
                                        f::SCOPE_NAME | f::SCOPE_VERSION => {
                                            let (name, label) = if fl.num == f::SCOPE_NAME {
                                                ("name", SCOPE_NAME_LABEL)
                                            } else {
                                                ("version", SCOPE_VERSION_LABEL)
                                            };
                                            let v = text(fl, &format!("{at}.{name}"))?;
                                            if !v.is_empty() {
                                                scope_pairs.push((label.into(), v.into()));
                                            }
                                        }
                                        f::SCOPE_ATTRIBUTES => {
                                            let at =
                                                format!("{at}.attributes[{}]", scope_pairs.len());
                                            if let (k, Some(v)) =
                                                key_values(&mut msg(fl, &at)?, &at, &d)?
                                            {
                                                scope_pairs.push((k, v));
                                            }
                                        }
                                        _ => {}
                                    }
                                    Ok(())
                                })?;
                            }
                            f::SCOPE_PROFILES_PROFILES => {
                                count += 1;
                                if count > MAX_PROFILES {
                                    return Err(Error::Malformed(format!(
                                        "{at}: more than {MAX_PROFILES} profiles in one request"
                                    )));
                                }
                                let at = format!("{at}.profiles[{}]", profiles.len());
                                profiles.push(profile(&mut msg(fl, &at)?, at)?);
                            }
                            _ => {}
                        }
                        Ok(())
                    })?;
                    scopes.push((scope_pairs, profiles));
                }
                _ => {}
            }
            Ok(())
        })?;
        for (scope_pairs, profiles) in scopes {
            let scope = Scope {
                at: &at,
                resource: &res_pairs,
                scope: &scope_pairs,
                profiles: &profiles,
            };
            scope.convert(&d, now_ns, limits, &mut frames, &mut out)?;
        }
    }
    Ok(out)
}

/// OTLP/JSON (`application/json`): the same messages in protobuf's JSON mapping (field
/// names in lowerCamelCase or as in the .proto, 64-bit integers as strings or numbers).
/// Errors name the field path (JSON has no byte offsets past the parse).
pub fn parse_export_request_json(
    body: &[u8],
    now_ns: i64,
    limits: &Limits,
) -> Result<Export, Error> {
    use serde_json::Value;
    let at = "ExportProfilesServiceRequest";
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Malformed(format!("{at}: not JSON: {e}")))?;
    let bad = |at: &str, what: &str| Error::Malformed(format!("{at}: {what}"));
    fn get<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
        v.get(camel)
            .or_else(|| v.get(snake))
            .filter(|v| !v.is_null())
    }
    fn arr<'a>(v: Option<&'a Value>, at: &str) -> Result<&'a [Value], Error> {
        match v {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(Error::Malformed(format!("{at}: not an array"))),
        }
    }
    fn num(v: Option<&Value>, at: &str) -> Result<i128, Error> {
        match v {
            None => Ok(0),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .ok_or_else(|| Error::Malformed(format!("{at}: {n} is not an integer"))),
            Some(Value::String(s)) => s
                .parse::<i128>()
                .map_err(|_| Error::Malformed(format!("{at}: {s:?} is not an integer"))),
            Some(_) => Err(Error::Malformed(format!("{at}: not an integer"))),
        }
    }
    let u64_ = |v: Option<&Value>, at: &str| -> Result<u64, Error> {
        u64::try_from(num(v, at)?).map_err(|_| bad(at, "out of range for uint64"))
    };
    let i64_ = |v: Option<&Value>, at: &str| -> Result<i64, Error> {
        i64::try_from(num(v, at)?).map_err(|_| bad(at, "out of range for int64"))
    };
    let idx = |v: Option<&Value>, at: &str| -> Result<u32, Error> {
        let n = num(v, at)?;
        u32::try_from(n)
            .ok()
            .filter(|i| i32::try_from(*i).is_ok())
            .ok_or_else(|| bad(at, &format!("index {n} is not a table index")))
    };
    let idxs = |v: Option<&Value>, at: &str| -> Result<Vec<u64>, Error> {
        arr(v, at)?
            .iter()
            .enumerate()
            .map(|(i, x)| idx(Some(x), &format!("{at}[{i}]")).map(u64::from))
            .collect()
    };
    let any = |v: Option<&Value>, at: &str| -> Result<Any, Error> {
        let Some(v) = v else { return Ok(Any::None) };
        Ok(if let Some(s) = get(v, "stringValue", "string_value") {
            Any::Str(
                s.as_str()
                    .ok_or_else(|| bad(at, "stringValue is not a string"))?
                    .into(),
            )
        } else if let Some(b) = get(v, "boolValue", "bool_value") {
            Any::Bool(
                b.as_bool()
                    .ok_or_else(|| bad(at, "boolValue is not a boolean"))?,
            )
        } else if let Some(i) = get(v, "intValue", "int_value") {
            Any::Int(i64_(Some(i), &format!("{at}.intValue"))?)
        } else if let Some(x) = get(v, "doubleValue", "double_value") {
            Any::Double(match x {
                Value::Number(n) => n.as_f64().unwrap_or_default(),
                Value::String(s) => s.parse().map_err(|_| bad(at, "doubleValue"))?,
                _ => return Err(bad(at, "doubleValue is not a number")),
            })
        } else if let Some(i) = get(v, "stringValueStrindex", "string_value_strindex") {
            Any::StrIdx(idx(Some(i), &format!("{at}.stringValueStrindex"))?)
        } else {
            Any::None
        })
    };
    let value_type = |v: Option<&Value>, at: &str| -> Result<(u32, u32), Error> {
        let Some(v) = v else { return Ok((0, 0)) };
        Ok((
            idx(
                get(v, "typeStrindex", "type_strindex"),
                &format!("{at}.typeStrindex"),
            )?,
            idx(
                get(v, "unitStrindex", "unit_strindex"),
                &format!("{at}.unitStrindex"),
            )?,
        ))
    };

    let mut d = Dict::default();
    if let Some(dv) = get(&v, "dictionary", "dictionary") {
        let at = format!("{at}.dictionary");
        for (i, s) in arr(get(dv, "stringTable", "string_table"), &at)?
            .iter()
            .enumerate()
        {
            let s = s
                .as_str()
                .ok_or_else(|| bad(&format!("{at}.stringTable[{i}]"), "not a string"))?;
            d.strings.push(s.into());
        }
        for (i, m) in arr(get(dv, "mappingTable", "mapping_table"), &at)?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.mappingTable[{i}]");
            d.mappings.push(OMapping {
                start: u64_(get(m, "memoryStart", "memory_start"), &at)?,
                limit: u64_(get(m, "memoryLimit", "memory_limit"), &at)?,
                offset: u64_(get(m, "fileOffset", "file_offset"), &at)?,
                filename: idx(get(m, "filenameStrindex", "filename_strindex"), &at)?,
                attrs: idxs(get(m, "attributeIndices", "attribute_indices"), &at)?,
            });
        }
        for (i, l) in arr(get(dv, "locationTable", "location_table"), &at)?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.locationTable[{i}]");
            let mut lines = Vec::new();
            for (k, ln) in arr(get(l, "lines", "lines"), &at)?.iter().enumerate() {
                let at = format!("{at}.lines[{k}]");
                lines.push((
                    idx(get(ln, "functionIndex", "function_index"), &at)?,
                    i64_(get(ln, "line", "line"), &at)?,
                    i64_(get(ln, "column", "column"), &at)?,
                ));
            }
            d.locations.push(OLocation {
                mapping: idx(get(l, "mappingIndex", "mapping_index"), &at)?,
                address: u64_(get(l, "address", "address"), &at)?,
                lines,
                attrs: idxs(get(l, "attributeIndices", "attribute_indices"), &at)?,
            });
        }
        for (i, fv) in arr(get(dv, "functionTable", "function_table"), &at)?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.functionTable[{i}]");
            d.functions.push(OFunction {
                name: idx(get(fv, "nameStrindex", "name_strindex"), &at)?,
                system_name: idx(get(fv, "systemNameStrindex", "system_name_strindex"), &at)?,
                filename: idx(get(fv, "filenameStrindex", "filename_strindex"), &at)?,
                start_line: i64_(get(fv, "startLine", "start_line"), &at)?,
            });
        }
        for (i, a) in arr(get(dv, "attributeTable", "attribute_table"), &at)?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.attributeTable[{i}]");
            d.attrs.push(OAttr {
                key: idx(get(a, "keyStrindex", "key_strindex"), &at)?,
                value: any(get(a, "value", "value"), &format!("{at}.value"))?,
                unit: idx(get(a, "unitStrindex", "unit_strindex"), &at)?,
            });
        }
        for (i, st) in arr(get(dv, "stackTable", "stack_table"), &at)?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.stackTable[{i}]");
            d.stacks
                .push(idxs(get(st, "locationIndices", "location_indices"), &at)?);
        }
    }
    let key_values = |v: Option<&Value>, at: &str| -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for (i, kv) in arr(v, at)?.iter().enumerate() {
            let at = format!("{at}[{i}]");
            let key = match get(kv, "key", "key").and_then(Value::as_str) {
                Some(k) => k.to_string(),
                None => match get(kv, "keyStrindex", "key_strindex") {
                    Some(i) => d.string(idx(Some(i), &at)?, &at)?.to_string(),
                    None => String::new(),
                },
            };
            let value = match any(get(kv, "value", "value"), &format!("{at}.value"))? {
                Any::Str(s) => s.to_string(),
                Any::StrIdx(i) => d.string(i, &at)?.to_string(),
                Any::Int(v) => v.to_string(),
                Any::Bool(b) => b.to_string(),
                Any::Double(x) => x.to_string(),
                Any::None => continue,
            };
            out.push((key, value));
        }
        Ok(out)
    };
    let mut out = Export::default();
    let mut count = 0usize;
    let mut frames = limits.max_decompressed / 4;
    let resources = arr(get(&v, "resourceProfiles", "resource_profiles"), at)?;
    for (ri, rp) in resources.iter().enumerate() {
        let at = format!("{at}.resource_profiles[{ri}]");
        let res_pairs = match get(rp, "resource", "resource") {
            Some(r) => key_values(
                get(r, "attributes", "attributes"),
                &format!("{at}.resource.attributes"),
            )?,
            None => Vec::new(),
        };
        for (si, sp) in arr(get(rp, "scopeProfiles", "scope_profiles"), &at)?
            .iter()
            .enumerate()
        {
            let sat = format!("{at}.scope_profiles[{si}]");
            let scope_pairs = match get(sp, "scope", "scope") {
                Some(sc) => {
                    let mut pairs = Vec::new();
                    for (field, label) in
                        [("name", SCOPE_NAME_LABEL), ("version", SCOPE_VERSION_LABEL)]
                    {
                        match get(sc, field, field) {
                            None => {}
                            Some(Value::String(v)) if v.is_empty() => {}
                            Some(Value::String(v)) => pairs.push((label.to_string(), v.clone())),
                            Some(_) => {
                                return Err(bad(&format!("{sat}.scope.{field}"), "not a string"));
                            }
                        }
                    }
                    pairs.extend(key_values(
                        get(sc, "attributes", "attributes"),
                        &format!("{sat}.scope.attributes"),
                    )?);
                    pairs
                }
                None => Vec::new(),
            };
            let mut profiles = Vec::new();
            for (pi, pv) in arr(get(sp, "profiles", "profiles"), &sat)?
                .iter()
                .enumerate()
            {
                count += 1;
                if count > MAX_PROFILES {
                    return Err(bad(
                        &sat,
                        &format!("more than {MAX_PROFILES} profiles in one request"),
                    ));
                }
                let pat = format!("{sat}.profiles[{pi}]");
                let mut samples = Vec::new();
                for (k, sv) in arr(get(pv, "samples", "samples"), &pat)?.iter().enumerate() {
                    let at = format!("{pat}.samples[{k}]");
                    let values = arr(get(sv, "values", "values"), &at)?
                        .iter()
                        .map(|x| i64_(Some(x), &format!("{at}.values")).map(|v| v as u64))
                        .collect::<Result<Vec<_>, _>>()?;
                    samples.push(OSample {
                        stack: idx(get(sv, "stackIndex", "stack_index"), &at)?,
                        attrs: idxs(get(sv, "attributeIndices", "attribute_indices"), &at)?,
                        values,
                        timestamps: arr(
                            get(sv, "timestampsUnixNano", "timestamps_unix_nano"),
                            &at,
                        )?
                        .len(),
                    });
                }
                profiles.push(OProfile {
                    sample_type: value_type(
                        get(pv, "sampleType", "sample_type"),
                        &format!("{pat}.sampleType"),
                    )?,
                    samples,
                    time: u64_(get(pv, "timeUnixNano", "time_unix_nano"), &pat)?,
                    duration: u64_(get(pv, "durationNano", "duration_nano"), &pat)?,
                    period_type: value_type(
                        get(pv, "periodType", "period_type"),
                        &format!("{pat}.periodType"),
                    )?,
                    period: i64_(get(pv, "period", "period"), &pat)?,
                    attrs: idxs(get(pv, "attributeIndices", "attribute_indices"), &pat)?,
                    at: pat,
                });
            }
            let scope = Scope {
                at: &at,
                resource: &res_pairs,
                scope: &scope_pairs,
                profiles: &profiles,
            };
            scope.convert(&d, now_ns, limits, &mut frames, &mut out)?;
        }
    }
    Ok(out)
}

/// An `ExportProfilesServiceResponse`: empty when everything was taken, else
/// `partial_success { rejected_profiles, error_message }`.
pub fn export_response(rejected: u64, error_message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if rejected == 0 && error_message.is_empty() {
        return out;
    }
    let mut inner = Vec::new();
    if rejected > 0 {
        inner.push(1 << 3);
        gocost_pprof::varint::put_varint(&mut inner, rejected);
    }
    if !error_message.is_empty() {
        inner.push((2 << 3) | 2);
        gocost_pprof::varint::put_varint(&mut inner, error_message.len() as u64);
        inner.extend_from_slice(error_message.as_bytes());
    }
    out.push((1 << 3) | 2);
    gocost_pprof::varint::put_varint(&mut out, inner.len() as u64);
    out.extend_from_slice(&inner);
    out
}

/// A `google.rpc.Status { int32 code = 1; string message = 2; }` (OTLP/HTTP's error body).
pub fn rpc_status(code: u64, message: &str) -> Vec<u8> {
    let mut out = vec![1 << 3];
    gocost_pprof::varint::put_varint(&mut out, code);
    out.push((2 << 3) | 2);
    gocost_pprof::varint::put_varint(&mut out, message.len() as u64);
    out.extend_from_slice(message.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request of testdata/otlp (gzip'd, made by make_request.py from the profile corpus).
    fn request(p: &str) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&testdata(&format!("otlp/{p}.gz"))[..])
            .read_to_end(&mut out)
            .expect("gzip");
        out
    }

    fn testdata(p: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata")
                .join(p),
        )
        .expect("testdata")
    }

    /// Each sample as (frames by function name and line, values, labels), sorted.
    fn canon(p: &Profile) -> Vec<String> {
        let mut v: Vec<String> = p
            .sample
            .iter()
            .map(|s| {
                let frames: Vec<String> = s
                    .location
                    .iter()
                    .map(|&l| {
                        let l = &p.location[l as usize];
                        let m = l.mapping.map(|m| p.mapping[m as usize].clone());
                        let lines: Vec<String> = l
                            .line
                            .iter()
                            .map(|ln| {
                                let f = &p.function[ln.function as usize];
                                format!(
                                    "{}/{}/{}:{}@{}",
                                    f.name, f.system_name, f.filename, ln.line, f.start_line
                                )
                            })
                            .collect();
                        let m = m.map(|m| {
                            (
                                m.memory_start,
                                m.memory_limit,
                                m.file_offset,
                                m.filename,
                                m.build_id,
                                m.has_functions,
                                m.has_filenames,
                                m.has_line_numbers,
                                m.has_inline_frames,
                            )
                        });
                        format!("{:#x} {m:?} {} {lines:?}", l.address, l.is_folded)
                    })
                    .collect();
                format!("{frames:?} {:?} {:?}", s.value, s.label)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_go_profile_sent_as_otlp_comes_back_whole() {
        for name in ["cpu", "heap"] {
            let want =
                gocost_pprof::decode(&testdata(&format!("profiles/{name}.pb.gz"))).expect("pprof");
            let got =
                parse_export_request(&request(&format!("{name}.pb.bin")), 1, &Limits::default())
                    .expect("request");
            assert_eq!(got.rejected, 0, "{:?}", got.errors);
            assert_eq!(got.profiles.len(), 1, "{name}: the columns joined");
            let p = &got.profiles[0];
            assert_eq!(p.kind, name);
            assert_eq!(p.labels.get("job").map(String::as_str), Some("otlp-test"));
            assert_eq!(
                p.labels.get("deployment_environment").map(String::as_str),
                Some("test")
            );
            // The scope's name as Prometheus labels OTLP metrics (no version was set).
            assert_eq!(
                p.labels.get("otel_scope_name").map(String::as_str),
                Some("make_request.py")
            );
            assert!(!p.labels.contains_key("otel_scope_version"));
            let g = &p.profile;
            assert_eq!(g.sample_type, want.sample_type);
            assert_eq!(
                (g.time_nanos, g.duration_nanos, g.period, &g.period_type),
                (
                    want.time_nanos,
                    want.duration_nanos,
                    want.period,
                    &want.period_type
                )
            );
            assert_eq!(g.comments, want.comments);
            assert_eq!(canon(g), canon(&want), "{name}");
        }
    }

    #[test]
    fn json_reads_as_protobuf() {
        let lim = Limits::default();
        let pb = parse_export_request(&request("heap.pb.bin"), 1, &lim).expect("protobuf");
        let js = parse_export_request_json(&request("heap.json"), 1, &lim).expect("JSON");
        assert_eq!(js.rejected, 0, "{:?}", js.errors);
        assert_eq!(js.profiles, pb.profiles);
        for (bad, want) in [
            (&b"{"[..], "not JSON"),
            (br#"{"resourceProfiles": 3}"#, "not an array"),
            (
                br#"{"resourceProfiles": [{"scopeProfiles": [{"scope": {"name": 3}}]}]}"#,
                "resource_profiles[0].scope_profiles[0].scope.name: not a string",
            ),
            (
                br#"{"dictionary": {"stackTable": [{"locationIndices": ["x"]}]}}"#,
                "ExportProfilesServiceRequest.dictionary.stackTable[0][0]: \"x\" is not an integer",
            ),
        ] {
            match parse_export_request_json(bad, 1, &lim) {
                Err(Error::Malformed(m)) => assert!(m.contains(want), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    /// Every prefix and many one-byte changes of a real request: an answer or an error,
    /// never a panic (the fuzz target `ingest_otlp` goes further).
    #[test]
    fn damaged_requests_never_panic() {
        let body = request("heap.pb.bin");
        let lim = Limits::default();
        for cut in 0..body.len() {
            let _ = parse_export_request(&body[..cut], 1, &lim);
        }
        for i in (0..body.len()).step_by(3) {
            for x in [0x00, 0x7f, 0x80, 0xff] {
                let mut b = body.clone();
                b[i] = x;
                if let Ok(e) = parse_export_request(&b, 1, &lim) {
                    for p in &e.profiles {
                        gocost_pprof::decode(&gocost_pprof::encode(&p.profile))
                            .expect("re-decodes");
                    }
                }
            }
        }
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let body = request("cpu.pb.bin");
        for cut in [1, 7, body.len() / 2, body.len() - 1] {
            match parse_export_request(&body[..cut], 1, &Limits::default()) {
                Err(Error::Malformed(m)) => assert!(
                    m.contains("byte offset") && m.contains("ExportProfilesServiceRequest"),
                    "{m}"
                ),
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        // A stack index past the table: that profile rejected, named.
        let mut w = Vec::new();
        // resource_profiles { scope_profiles { profiles { samples { stack_index: 5 } } } }
        let sample = [f::SAMPLE_STACK_INDEX as u8 * 8, 5];
        let prof = [
            [(f::PROFILE_SAMPLES as u8) << 3 | 2, sample.len() as u8].as_slice(),
            &sample,
        ]
        .concat();
        let scope = [
            [
                (f::SCOPE_PROFILES_PROFILES as u8) << 3 | 2,
                prof.len() as u8,
            ]
            .as_slice(),
            &prof,
        ]
        .concat();
        let res = [
            [
                (f::RESOURCE_PROFILES_SCOPE_PROFILES as u8) << 3 | 2,
                scope.len() as u8,
            ]
            .as_slice(),
            &scope,
        ]
        .concat();
        w.extend([
            (f::REQUEST_RESOURCE_PROFILES as u8) << 3 | 2,
            res.len() as u8,
        ]);
        w.extend(res);
        let got = parse_export_request(&w, 1, &Limits::default()).expect("wire is fine");
        assert_eq!(got.rejected, 1);
        assert!(
            got.errors[0].contains("samples[0].stack_index: 5 past the stack_table's 0 entries"),
            "{:?}",
            got.errors
        );
        // A short sample naming a long shared stack counts its frames against the budget.
        let field = |num: u64, body: &[u8]| {
            let mut v = Vec::new();
            gocost_pprof::varint::put_varint(&mut v, (num << 3) | 2);
            gocost_pprof::varint::put_varint(&mut v, body.len() as u64);
            v.extend_from_slice(body);
            v
        };
        let loc = [(f::LOCATION_ADDRESS as u8) << 3, 1];
        let dict = [
            field(f::DICT_LOCATION_TABLE, &[]),
            field(f::DICT_LOCATION_TABLE, &loc),
            field(f::DICT_STACK_TABLE, &[]),
            field(
                f::DICT_STACK_TABLE,
                &field(f::STACK_LOCATION_INDICES, &[1u8; 100]),
            ),
        ]
        .concat();
        let sample = [f::SAMPLE_STACK_INDEX as u8 * 8, 1];
        let prof: Vec<u8> = (0..50)
            .flat_map(|_| field(f::PROFILE_SAMPLES, &sample))
            .collect();
        let res = field(
            f::RESOURCE_PROFILES_SCOPE_PROFILES,
            &field(f::SCOPE_PROFILES_PROFILES, &prof),
        );
        let w = [
            field(f::REQUEST_DICTIONARY, &dict),
            field(f::REQUEST_RESOURCE_PROFILES, &res),
        ]
        .concat();
        let ok = parse_export_request(&w, 1, &Limits::default()).expect("within the budget");
        assert_eq!(ok.profiles[0].profile.sample.len(), 50);
        assert_eq!(ok.profiles[0].profile.sample[0].location.len(), 100);
        let small = Limits {
            max_decompressed: 4 * 4999,
            ..Limits::default()
        };
        match parse_export_request(&w, 1, &small) {
            Err(Error::TooLarge(m)) => assert!(m.contains("samples[49]"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(export_response(0, ""), Vec::<u8>::new());
        assert_eq!(
            export_response(1, "x"),
            vec![0x0a, 5, 0x08, 1, 0x12, 1, b'x']
        );
    }
}
