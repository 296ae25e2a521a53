"""Tree-sitter queries that tag definitions and references, one string per language.

Every capture names the identifier node and is spelled ``definition.<kind>`` or
``reference.<kind>``. When two patterns capture the same node, the pattern written first
wins, so the specific ones come first (a Python method before a function, a Go interface
before a plain type). A definition always beats a reference on the same node: grammars
such as TypeScript's tag a class's own name as a ``type_identifier`` too.

Written for this project after the tagging idea of GitHub's code navigation and aider;
the patterns are our own and kept to what the repo map ranks on.
"""

from __future__ import annotations

_PYTHON = """
(class_definition body: (block (function_definition name: (identifier) @definition.method)))
(class_definition body: (block (decorated_definition
    definition: (function_definition name: (identifier) @definition.method))))
(class_definition name: (identifier) @definition.class)
(function_definition name: (identifier) @definition.function)
(module (expression_statement (assignment left: (identifier) @definition.constant)))

(call function: (identifier) @reference.call)
(call function: (attribute attribute: (identifier) @reference.call))
(decorator (identifier) @reference.call)
(class_definition superclasses: (argument_list (identifier) @reference.class))
(class_definition superclasses: (argument_list
    (attribute attribute: (identifier) @reference.class)))
(type (identifier) @reference.type)
(import_from_statement name: (dotted_name (identifier) @reference.import))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @reference.import)))
(attribute attribute: (identifier) @reference.attribute)
"""

# Shared by JavaScript and both TypeScript grammars: every node named here exists in all.
_ECMASCRIPT = """
(method_definition name: (_) @definition.method)
(function_declaration name: (_) @definition.function)
(generator_function_declaration name: (_) @definition.function)
(class_declaration name: (_) @definition.class)
(variable_declarator name: (identifier) @definition.function
    value: [(arrow_function) (function_expression)])

(call_expression function: (identifier) @reference.call)
(call_expression function: (member_expression property: (property_identifier) @reference.call))
(new_expression constructor: (identifier) @reference.class)
(new_expression constructor: (member_expression property: (property_identifier) @reference.class))
"""

_JAVASCRIPT = (
    _ECMASCRIPT
    + """
(class_heritage (identifier) @reference.class)
"""
)

_TYPESCRIPT = (
    _ECMASCRIPT
    + """
(abstract_class_declaration name: (_) @definition.class)
(interface_declaration name: (_) @definition.interface)
(type_alias_declaration name: (_) @definition.type)
(enum_declaration name: (_) @definition.enum)
(method_signature name: (_) @definition.method)
(abstract_method_signature name: (_) @definition.method)

(extends_clause value: (identifier) @reference.class)
(type_identifier) @reference.type
"""
)

_GO = """
(method_declaration name: (field_identifier) @definition.method)
(function_declaration name: (identifier) @definition.function)
(type_spec name: (type_identifier) @definition.interface type: (interface_type))
(type_spec name: (type_identifier) @definition.struct type: (struct_type))
(type_spec name: (type_identifier) @definition.type)
(type_alias name: (type_identifier) @definition.type)
(method_elem name: (field_identifier) @definition.method)
(source_file (const_declaration (const_spec name: (identifier) @definition.constant)))

(call_expression function: (identifier) @reference.call)
(call_expression function: (selector_expression field: (field_identifier) @reference.call))
(type_identifier) @reference.type
"""

_JAVA = """
(class_declaration name: (identifier) @definition.class)
(interface_declaration name: (identifier) @definition.interface)
(enum_declaration name: (identifier) @definition.enum)
(record_declaration name: (identifier) @definition.class)
(annotation_type_declaration name: (identifier) @definition.interface)
(method_declaration name: (identifier) @definition.method)
(constructor_declaration name: (identifier) @definition.constructor)

(method_invocation name: (identifier) @reference.call)
(object_creation_expression type: (type_identifier) @reference.class)
(type_identifier) @reference.type
"""

_CSHARP = """
(class_declaration name: (identifier) @definition.class)
(interface_declaration name: (identifier) @definition.interface)
(struct_declaration name: (identifier) @definition.struct)
(enum_declaration name: (identifier) @definition.enum)
(record_declaration name: (identifier) @definition.class)
(delegate_declaration name: (identifier) @definition.type)
(method_declaration name: (identifier) @definition.method)
(constructor_declaration name: (identifier) @definition.constructor)
(property_declaration name: (identifier) @definition.property)

(invocation_expression function: (identifier) @reference.call)
(invocation_expression function: (member_access_expression name: (identifier) @reference.call))
(object_creation_expression type: (identifier) @reference.class)
(base_list (identifier) @reference.class)
(variable_declaration type: (identifier) @reference.type)
(parameter type: (identifier) @reference.type)
(property_declaration type: (identifier) @reference.type)
(method_declaration returns: (identifier) @reference.type)
"""

QUERIES: dict[str, str] = {
    "python": _PYTHON,
    "javascript": _JAVASCRIPT,
    "typescript": _TYPESCRIPT,
    "tsx": _TYPESCRIPT,
    "go": _GO,
    "java": _JAVA,
    "csharp": _CSHARP,
}
