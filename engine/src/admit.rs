//! Admission: static checks of wasm bytes before anything is compiled or run.
//!
//! Validation uses exactly the engine's feature set, imports must be on the allow-list, and
//! the policy's caps on module size, function count and declared memory apply. Every failure
//! is a [`Rejection`] naming what was wrong; malformed bytes never panic.

use std::collections::HashMap;

use wasmparser::{ExternalKind, FuncType, Parser, Payload, TypeRef, Validator, WasmFeatures};

use crate::capability::imports;
use crate::policy::Policy;

/// Most core instances a component may create (admission refuses more; the limiter and the
/// instance pool allow exactly this many).
pub const MAX_COMPONENT_INSTANCES: usize = 64;
/// Most linear memories a component may create (admission refuses more).
pub const MAX_COMPONENT_MEMORIES: usize = 8;
/// Most tables a component may create (admission refuses more).
pub const MAX_COMPONENT_TABLES: usize = 16;

/// What kind of binary the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BinaryKind {
    /// A core WebAssembly module (WASI preview 1).
    CoreModule,
    /// A WebAssembly component (WASI 0.2).
    Component,
}

/// Facts about an admitted binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleInfo {
    /// Core module or component.
    pub kind: BinaryKind,
    /// Size in bytes.
    pub size: u64,
    /// Imported plus defined functions (core modules).
    pub functions: u64,
    /// Declared initial linear memory in bytes (core modules).
    pub memory_min_bytes: u64,
    /// `module::name` of every import, in order (core modules).
    pub imports: Vec<String>,
    /// Core instances created when instantiating it: 1 for a core module; for a component
    /// every core instantiation, counted through nested components as often as they are
    /// instantiated.
    pub core_instances: u64,
    /// Linear memories created when instantiating it (defined, not imported).
    #[serde(default)]
    pub memories: u64,
    /// Tables created when instantiating it (defined, not imported).
    #[serde(default)]
    pub tables: u64,
    /// The initial elements of all those tables together. (A pinned runner's own table
    /// does not count against `table_elements`: see [`check_runner_caps`].)
    #[serde(default)]
    pub table_min_elements: u64,
}

/// Why a module was not admitted. Displayed as one lowercase sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

const WASM_MAGIC: &[u8; 4] = b"\0asm";
const PAGE: u64 = 65536;

/// Sniffs the header: core module, component, or a clear reason why neither.
///
/// # Errors
///
/// Empty input, an ELF or other non-wasm file, an unknown wasm version.
pub fn sniff(bytes: &[u8]) -> Result<BinaryKind, Rejection> {
    if bytes.is_empty() {
        return Err(Rejection(
            "the file is empty, not a WebAssembly binary".into(),
        ));
    }
    if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
        if bytes.starts_with(b"\x7fELF") {
            return Err(Rejection(
                "the file is an ELF executable, not a WebAssembly binary".into(),
            ));
        }
        if bytes.len() >= 4 && &bytes[..4] == WASM_MAGIC {
            return Err(Rejection("the WebAssembly header is truncated".into()));
        }
        return Err(Rejection(
            "the file is not a WebAssembly binary (it does not start with `\\0asm`)".into(),
        ));
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Ok(BinaryKind::CoreModule),
        [0x0d, 0x00, 0x01, 0x00] => Ok(BinaryKind::Component),
        [a, b, c, d] => Err(Rejection(format!(
            "unsupported WebAssembly version/layer bytes {a:02x} {b:02x} {c:02x} {d:02x}"
        ))),
        _ => Err(Rejection("the WebAssembly header is truncated".into())),
    }
}

/// Admits a core module: header, size cap, validation with `features`, import allow-list,
/// function-count and memory caps, and the `_start`/`memory` exports of a WASI command.
///
/// # Errors
///
/// The first reason the module cannot run, as a [`Rejection`].
pub fn admit_core(
    bytes: &[u8],
    policy: &Policy,
    features: WasmFeatures,
) -> Result<ModuleInfo, Rejection> {
    check_size(bytes.len() as u64, BinaryKind::CoreModule, policy)?;
    match sniff(bytes)? {
        BinaryKind::CoreModule => {}
        BinaryKind::Component => {
            return Err(Rejection(
                "this is a WebAssembly component, but a core module was expected".into(),
            ));
        }
    }
    let mut validator = Validator::new_with_features(features);
    validator
        .validate_all(bytes)
        .map_err(|e| Rejection(format!("invalid module: {e}")))?;

    let mut types: Vec<Option<FuncType>> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut imports_seen = Vec::new();
    let mut memory_min_pages = 0u64;
    let mut memories = 0u64;
    let mut tables = 0u64;
    let mut table_min_elements = 0u64;
    let mut exports: HashMap<String, (ExternalKind, u32)> = HashMap::new();

    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| Rejection(format!("invalid module: {e}")))?;
        match payload {
            Payload::TypeSection(reader) => {
                for rec in reader.into_iter_err_on_gc_types() {
                    let ty = rec.map_err(|e| Rejection(format!("invalid module: {e}")))?;
                    types.push(Some(ty));
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| Rejection(format!("invalid module: {e}")))?;
                    let shown = format!(
                        "{}::{}",
                        import.module.escape_debug(),
                        import.name.escape_debug()
                    );
                    match import.ty {
                        TypeRef::Func(idx) => {
                            if !imports::is_allowed(import.module, import.name) {
                                return Err(Rejection(forbidden_import_message(
                                    import.module,
                                    &shown,
                                )));
                            }
                            func_types.push(idx);
                        }
                        TypeRef::Memory(_) | TypeRef::Table(_) | TypeRef::Global(_) => {
                            return Err(Rejection(format!(
                                "the module imports `{shown}`, which is not a function; corral provides only WASI functions (hint: the module must define and export its own memory)"
                            )));
                        }
                        _ => {
                            return Err(Rejection(format!(
                                "the module imports `{shown}`, which corral does not provide"
                            )));
                        }
                    }
                    imports_seen.push(shown);
                }
            }
            Payload::FunctionSection(reader) => {
                for idx in reader {
                    func_types.push(idx.map_err(|e| Rejection(format!("invalid module: {e}")))?);
                }
            }
            Payload::MemorySection(reader) => {
                for mem in reader {
                    let mem = mem.map_err(|e| Rejection(format!("invalid module: {e}")))?;
                    memory_min_pages = memory_min_pages.saturating_add(mem.initial);
                    memories += 1;
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(|e| Rejection(format!("invalid module: {e}")))?;
                    tables += 1;
                    table_min_elements = table_min_elements.saturating_add(table.ty.initial);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| Rejection(format!("invalid module: {e}")))?;
                    exports.insert(export.name.to_string(), (export.kind, export.index));
                }
            }
            _ => {}
        }
    }

    let functions = func_types.len() as u64;
    let memory_min_bytes = memory_min_pages.saturating_mul(PAGE);
    let shape = Shape {
        instances: 1,
        memories,
        tables,
        table_min_elements,
    };
    check_counts(BinaryKind::CoreModule, functions, memory_min_bytes, policy)?;
    check_shape(BinaryKind::CoreModule, shape, policy)?;

    match exports.get("_start") {
        Some((ExternalKind::Func, idx)) => {
            let ty = func_types
                .get(*idx as usize)
                .and_then(|t| types.get(*t as usize))
                .and_then(|t| t.as_ref());
            match ty {
                Some(t) if t.params().is_empty() && t.results().is_empty() => {}
                _ => {
                    return Err(Rejection(
                        "the `_start` export must be a function taking and returning nothing"
                            .into(),
                    ));
                }
            }
        }
        Some(_) => {
            return Err(Rejection("the `_start` export is not a function".into()));
        }
        None if exports.contains_key("_initialize") => {
            return Err(Rejection(
                "the module is a WASI reactor (it exports `_initialize`, not `_start`) (hint: build a command, e.g. a binary with `fn main`)".into(),
            ));
        }
        None => {
            return Err(Rejection(
                "the module has no `_start` export (hint: build a WASI command, e.g. a Rust binary with `fn main` for wasm32-wasip1)".into(),
            ));
        }
    }
    if !imports_seen.is_empty() && !matches!(exports.get("memory"), Some((ExternalKind::Memory, _)))
    {
        return Err(Rejection(
            "the module imports host functions but does not export its `memory`".into(),
        ));
    }

    Ok(ModuleInfo {
        kind: BinaryKind::CoreModule,
        size: bytes.len() as u64,
        functions,
        memory_min_bytes,
        imports: imports_seen,
        core_instances: 1,
        memories,
        tables,
        table_min_elements,
    })
}

/// Admits a component: header, size cap, validation with the engine's features (the
/// component model on top of the core feature set), and the function-count cap summed over
/// its core modules. Imports and exports are checked when it is linked (only the WASI 0.2
/// command world is provided; the component must export `wasi:cli/run`).
///
/// # Errors
///
/// The first reason the component cannot run, as a [`Rejection`].
pub fn admit_component(
    bytes: &[u8],
    policy: &Policy,
    features: WasmFeatures,
) -> Result<ModuleInfo, Rejection> {
    check_size(bytes.len() as u64, BinaryKind::Component, policy)?;
    let features = features | WasmFeatures::COMPONENT_MODEL;
    Validator::new_with_features(features)
        .validate_all(bytes)
        .map_err(|e| Rejection(format!("invalid component: {e}")))?;
    let mut functions = 0u64;
    let mut memory_min_pages = 0u64;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| Rejection(format!("invalid component: {e}")))? {
            Payload::FunctionSection(r) => functions += u64::from(r.count()),
            Payload::MemorySection(r) => {
                for m in r {
                    let m = m.map_err(|e| Rejection(format!("invalid component: {e}")))?;
                    memory_min_pages = memory_min_pages.saturating_add(m.initial);
                }
            }
            _ => {}
        }
    }
    let shape = component_shape(bytes)?;
    let memory_min_bytes = memory_min_pages.saturating_mul(PAGE);
    check_counts(BinaryKind::Component, functions, memory_min_bytes, policy)?;
    check_shape(BinaryKind::Component, shape, policy)?;
    Ok(ModuleInfo {
        kind: BinaryKind::Component,
        size: bytes.len() as u64,
        functions,
        memory_min_bytes,
        imports: Vec::new(),
        core_instances: shape.instances,
        memories: shape.memories,
        tables: shape.tables,
        table_min_elements: shape.table_min_elements,
    })
}

/// What instantiating a module or component creates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    pub(crate) instances: u64,
    pub(crate) memories: u64,
    pub(crate) tables: u64,
    pub(crate) table_min_elements: u64,
}

impl Shape {
    fn add(&mut self, o: Shape) {
        self.instances = self.instances.saturating_add(o.instances);
        self.memories = self.memories.saturating_add(o.memories);
        self.tables = self.tables.saturating_add(o.tables);
        self.table_min_elements = self.table_min_elements.saturating_add(o.table_min_elements);
    }
}

/// One scope while walking a component: a core module (what one instance of it creates)
/// or a component (its core-module and component index spaces, `None` where the shape
/// cannot be known, and what instantiating it creates so far).
enum Scope {
    Module(Shape),
    Component {
        modules: Vec<Option<Shape>>,
        components: Vec<Option<Shape>>,
        total: Shape,
    },
}

/// Counts what instantiating a component creates: every core instantiation, and the
/// memories and tables of the modules instantiated, through nested components as often as
/// each is instantiated (a component instantiated twice counts twice).
///
/// # Errors
///
/// A component that instantiates a module or component whose shape cannot be known here
/// (one it imports), or malformed bytes.
fn component_shape(bytes: &[u8]) -> Result<Shape, Rejection> {
    use wasmparser::{
        ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind, ComponentTypeRef,
    };
    let bad = |e: wasmparser::BinaryReaderError| Rejection(format!("invalid component: {e}"));
    let unknown = || {
        Rejection("the component instantiates a module or component it imports, which corral cannot provide".into())
    };
    let mut stack: Vec<Scope> = Vec::new();
    let mut root = None;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(bad)?;
        match payload {
            Payload::Version { .. } if stack.is_empty() && root.is_none() => {
                stack.push(Scope::Component {
                    modules: Vec::new(),
                    components: Vec::new(),
                    total: Shape::default(),
                });
            }
            Payload::ModuleSection { .. } => stack.push(Scope::Module(Shape {
                instances: 1,
                ..Shape::default()
            })),
            Payload::ComponentSection { .. } => stack.push(Scope::Component {
                modules: Vec::new(),
                components: Vec::new(),
                total: Shape::default(),
            }),
            Payload::MemorySection(r) => {
                if let Some(Scope::Module(s)) = stack.last_mut() {
                    s.memories = s.memories.saturating_add(u64::from(r.count()));
                }
            }
            Payload::TableSection(r) => {
                if let Some(Scope::Module(s)) = stack.last_mut() {
                    for t in r {
                        let t = t.map_err(bad)?;
                        s.tables = s.tables.saturating_add(1);
                        s.table_min_elements = s.table_min_elements.saturating_add(t.ty.initial);
                    }
                }
            }
            Payload::InstanceSection(r) => {
                for i in r {
                    if let wasmparser::Instance::Instantiate { module_index, .. } =
                        i.map_err(bad)?
                        && let Some(Scope::Component { modules, total, .. }) = stack.last_mut()
                    {
                        let m = modules.get(module_index as usize).copied().flatten();
                        total.add(m.ok_or_else(unknown)?);
                    }
                }
            }
            Payload::ComponentInstanceSection(r) => {
                for i in r {
                    if let wasmparser::ComponentInstance::Instantiate {
                        component_index, ..
                    } = i.map_err(bad)?
                        && let Some(Scope::Component {
                            components, total, ..
                        }) = stack.last_mut()
                    {
                        let c = components.get(component_index as usize).copied().flatten();
                        total.add(c.ok_or_else(unknown)?);
                    }
                }
            }
            Payload::ComponentAliasSection(r) => {
                for a in r {
                    let a = a.map_err(bad)?;
                    let depth = stack.len();
                    let (is_module, item) = match a {
                        ComponentAlias::Outer {
                            kind:
                                kind @ (ComponentOuterAliasKind::CoreModule
                                | ComponentOuterAliasKind::Component),
                            count,
                            index,
                        } => {
                            let is_module = kind == ComponentOuterAliasKind::CoreModule;
                            let outer = depth
                                .checked_sub(1 + count as usize)
                                .and_then(|i| stack.get(i));
                            let item = match outer {
                                Some(Scope::Component {
                                    modules,
                                    components,
                                    ..
                                }) => if is_module { modules } else { components }
                                    .get(index as usize)
                                    .copied()
                                    .flatten(),
                                _ => None,
                            };
                            (is_module, item)
                        }
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Module,
                            ..
                        } => (true, None),
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Component,
                            ..
                        } => (false, None),
                        _ => continue,
                    };
                    push_item(stack.last_mut(), is_module, item);
                }
            }
            Payload::ComponentImportSection(r) => {
                for i in r {
                    match i.map_err(bad)?.ty {
                        ComponentTypeRef::Module(_) => push_item(stack.last_mut(), true, None),
                        ComponentTypeRef::Component(_) => {
                            push_item(stack.last_mut(), false, None);
                        }
                        _ => {}
                    }
                }
            }
            Payload::ComponentExportSection(r) => {
                for e in r {
                    let e = e.map_err(bad)?;
                    let is_module = match e.kind {
                        ComponentExternalKind::Module => true,
                        ComponentExternalKind::Component => false,
                        _ => continue,
                    };
                    let item = match stack.last() {
                        Some(Scope::Component {
                            modules,
                            components,
                            ..
                        }) => if is_module { modules } else { components }
                            .get(e.index as usize)
                            .copied()
                            .flatten(),
                        _ => None,
                    };
                    push_item(stack.last_mut(), is_module, item);
                }
            }
            Payload::End(_) => match stack.pop() {
                Some(Scope::Module(shape)) => push_item(stack.last_mut(), true, Some(shape)),
                Some(Scope::Component { total, .. }) => {
                    if stack.is_empty() {
                        root = Some(total);
                    } else {
                        push_item(stack.last_mut(), false, Some(total));
                    }
                }
                None => {}
            },
            _ => {}
        }
    }
    root.ok_or_else(|| Rejection("invalid component: it never ends".into()))
}

fn push_item(scope: Option<&mut Scope>, is_module: bool, item: Option<Shape>) {
    if let Some(Scope::Component {
        modules,
        components,
        ..
    }) = scope
    {
        if is_module {
            modules.push(item);
        } else {
            components.push(item);
        }
    }
}

/// Admits a pinned runner that is a WASI reactor (the scientific Python runner): the bytes
/// are trusted by their hash, so they are only parsed, not validated here (wasmtime validates
/// them with the runner engine's features when it compiles them). Imports must be WASI
/// preview 1 functions or `host::call`; the module must export its `memory` and a
/// `run: () -> i32`.
///
/// # Errors
///
/// The bytes are not such a module.
pub fn admit_reactor_runner(bytes: &[u8]) -> Result<ModuleInfo, Rejection> {
    let bad = |e: wasmparser::BinaryReaderError| Rejection(format!("invalid runner: {e}"));
    let mut functions = 0u64;
    let mut memory_min_pages = 0u64;
    let (mut memories, mut tables, mut table_min) = (0u64, 0u64, 0u64);
    let mut imports_seen = Vec::new();
    let mut exports: HashMap<String, ExternalKind> = HashMap::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(bad)? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(bad)?;
                    let allowed = matches!(import.ty, TypeRef::Func(_))
                        && (imports::is_allowed(import.module, import.name)
                            || (import.module, import.name) == imports::HOST_CALL);
                    if !allowed {
                        return Err(Rejection(format!(
                            "the runner imports `{}::{}`, which corral does not provide",
                            import.module.escape_debug(),
                            import.name.escape_debug()
                        )));
                    }
                    functions += 1;
                    imports_seen.push(format!("{}::{}", import.module, import.name));
                }
            }
            Payload::FunctionSection(r) => functions += u64::from(r.count()),
            Payload::TableSection(r) => {
                for t in r {
                    tables += 1;
                    table_min = table_min.saturating_add(t.map_err(bad)?.ty.initial);
                }
            }
            Payload::MemorySection(r) => {
                for m in r {
                    memories += 1;
                    memory_min_pages = memory_min_pages.saturating_add(m.map_err(bad)?.initial);
                }
            }
            Payload::ExportSection(r) => {
                for e in r {
                    let e = e.map_err(bad)?;
                    exports.insert(e.name.to_string(), e.kind);
                }
            }
            _ => {}
        }
    }
    if exports.get("run") != Some(&ExternalKind::Func)
        || exports.get("memory") != Some(&ExternalKind::Memory)
    {
        return Err(Rejection(
            "the runner does not export `run` and `memory`".into(),
        ));
    }
    if memories > 1 || tables > 1 {
        // The limiter gives a core module one memory and one table.
        return Err(Rejection(format!(
            "the runner defines {memories} memories and {tables} tables; corral instantiates at most one of each"
        )));
    }
    Ok(ModuleInfo {
        kind: BinaryKind::CoreModule,
        size: bytes.len() as u64,
        functions,
        memory_min_bytes: memory_min_pages.saturating_mul(PAGE),
        imports: imports_seen,
        core_instances: 1,
        memories,
        tables,
        table_min_elements: table_min,
    })
}

/// The caps that apply to a pinned runner: only the memory it starts with, which is part of
/// the run's `memory_bytes`. Its size, function count and table are corral's, not the
/// agent's, and are not held against `module_bytes`, `functions` or `table_elements`.
///
/// # Errors
///
/// The runner's initial memory exceeds the policy's `memory_bytes`.
pub fn check_runner_caps(info: &ModuleInfo, policy: &Policy) -> Result<(), Rejection> {
    let l = &policy.limits;
    if info.memory_min_bytes > l.memory.0 {
        return Err(Rejection(format!(
            "the runner starts with {} bytes of memory, more than the policy's `memory_bytes` limit of {} (hint: use a policy with more memory)",
            info.memory_min_bytes, l.memory
        )));
    }
    Ok(())
}

/// Re-checks the policy-dependent caps (size, functions, declared memory) of an already
/// validated module against `policy`.
///
/// # Errors
///
/// The first cap exceeded.
pub fn check_caps(info: &ModuleInfo, policy: &Policy) -> Result<(), Rejection> {
    check_size(info.size, info.kind, policy)?;
    check_counts(info.kind, info.functions, info.memory_min_bytes, policy)?;
    let shape = Shape {
        instances: info.core_instances,
        memories: info.memories,
        tables: info.tables,
        table_min_elements: info.table_min_elements,
    };
    check_shape(info.kind, shape, policy)
}

/// What an instance of the binary needs must fit what any run can give it: the limiter and
/// the instance pool allow one memory and one table per core module, and per component at
/// most [`MAX_COMPONENT_INSTANCES`](MAX_COMPONENT_INSTANCES) core instances,
/// [`MAX_COMPONENT_MEMORIES`](MAX_COMPONENT_MEMORIES) memories and
/// [`MAX_COMPONENT_TABLES`](MAX_COMPONENT_TABLES) tables; the tables may not
/// start with more elements together than the policy's `table_elements`. A binary that asks for more could never be
/// instantiated, so it is not admitted (`corral check` says so).
fn check_shape(kind: BinaryKind, shape: Shape, policy: &Policy) -> Result<(), Rejection> {
    let (instances, memories, tables) = match kind {
        BinaryKind::CoreModule => (1, 1, 1),
        BinaryKind::Component => (
            MAX_COMPONENT_INSTANCES as u64,
            MAX_COMPONENT_MEMORIES as u64,
            MAX_COMPONENT_TABLES as u64,
        ),
    };
    let what = noun(kind);
    if shape.instances > instances {
        return Err(Rejection(format!(
            "the {what} creates {} core instances when instantiated, more than the {instances} corral allows",
            shape.instances
        )));
    }
    if shape.memories > memories {
        return Err(Rejection(format!(
            "the {what} creates {} linear memories, more than the {memories} corral allows",
            shape.memories
        )));
    }
    if shape.tables > tables {
        return Err(Rejection(format!(
            "the {what} defines {} tables, more than the {tables} corral allows",
            shape.tables
        )));
    }
    let max = policy.limits.table_elements.0;
    if shape.table_min_elements > max {
        return Err(Rejection(format!(
            "the {what} declares tables of {} elements in all, more than the policy's `table_elements` limit of {max}",
            shape.table_min_elements
        )));
    }
    Ok(())
}

fn noun(kind: BinaryKind) -> &'static str {
    match kind {
        BinaryKind::CoreModule => "module",
        BinaryKind::Component => "component",
    }
}

/// The `module_bytes` cap (checked before anything is parsed).
fn check_size(size: u64, kind: BinaryKind, policy: &Policy) -> Result<(), Rejection> {
    let max = policy.limits.module_bytes;
    if size > max.0 {
        return Err(Rejection(format!(
            "the {} is {size} bytes, more than the policy's `module_bytes` limit of {max}",
            noun(kind)
        )));
    }
    Ok(())
}

/// The `functions` and `memory_bytes` caps on what the binary declares.
fn check_counts(
    kind: BinaryKind,
    functions: u64,
    memory_min_bytes: u64,
    policy: &Policy,
) -> Result<(), Rejection> {
    let l = &policy.limits;
    if functions > l.functions.0 {
        return Err(Rejection(format!(
            "the {} has {functions} functions, more than the policy's `functions` limit of {}",
            noun(kind),
            l.functions
        )));
    }
    if memory_min_bytes > l.memory.0 {
        return Err(Rejection(format!(
            "the {} declares {} pages ({memory_min_bytes} bytes) of initial memory, more than the policy's `memory_bytes` limit of {}",
            noun(kind),
            memory_min_bytes / PAGE,
            l.memory
        )));
    }
    Ok(())
}

fn forbidden_import_message(module: &str, shown: &str) -> String {
    match module {
        imports::WASI_P1 => format!(
            "the module imports `{shown}`, which is not a WASI preview 1 function corral provides"
        ),
        imports::CORRAL_V1 => {
            format!("the module imports `{shown}`, which is not part of corral_v1")
        }
        "wasi_unstable" => format!(
            "the module imports `{shown}` from WASI preview 0 (`wasi_unstable`), which corral does not provide (hint: rebuild for wasm32-wasip1)"
        ),
        "wasi" => format!("the module imports `{shown}` (wasi-threads), and threads are disabled"),
        _ => format!(
            "the module imports `{shown}`; only `wasi_snapshot_preview1` and `corral_v1` functions are provided"
        ),
    }
}
