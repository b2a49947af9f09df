"""What a GraphQL query reads, for the request accounting (accounting.Stats).

Every query arrives at one endpoint, `POST /graphql`; the statistics break those requests
and their points down by what each query reads (`graphql_by_query`), so that a benchmark can
tell reviews from discussions or projects. A query is named by its outermost connections as
`Type.field` (the type the field is selected on: an object, an interface or a fragment's
type condition), sorted and comma-separated; connections nested in those belong to them. A
query that reads no connection is named by its root fields (`Query.viewer`), one that does
not parse as `invalid`. Directives are not evaluated: the name is the query's shape.
"""

from __future__ import annotations

import json

import graphql
from graphql import GraphQLError, GraphQLSchema, get_named_type
from graphql import language as ast

INVALID = "invalid"


def reads(schema: GraphQLSchema, body: bytes) -> str:
    try:
        req = json.loads(body or b"null")
        doc = graphql.parse(req["query"])
        op = graphql.utilities.get_operation_ast(doc, req.get("operationName"))
    except (ValueError, TypeError, KeyError, GraphQLError):
        return INVALID
    root = schema.get_root_type(op.operation) if op is not None else None
    if root is None:
        return INVALID
    frags = {d.name.value: d for d in doc.definitions
             if isinstance(d, ast.FragmentDefinitionNode)}
    found: set[str] = set()

    def walk(sel_set: ast.SelectionSetNode, parent) -> None:
        for sel in sel_set.selections:
            if isinstance(sel, ast.FieldNode):
                fdef = getattr(parent, "fields", {}).get(sel.name.value)
                if fdef is None:
                    continue
                ftype = get_named_type(fdef.type)
                if ftype.name.endswith("Connection") and {"first", "last"} & set(fdef.args):
                    found.add(f"{parent.name}.{sel.name.value}")
                elif sel.selection_set:
                    walk(sel.selection_set, ftype)
            elif isinstance(sel, ast.InlineFragmentNode):
                cond = sel.type_condition
                walk(sel.selection_set, schema.get_type(cond.name.value) if cond else parent)
            elif sel.name.value in frags:
                frag = frags[sel.name.value]
                walk(frag.selection_set, schema.get_type(frag.type_condition.name.value))

    walk(op.selection_set, root)
    if not found:
        found = {f"{root.name}.{sel.name.value}" for sel in op.selection_set.selections
                 if isinstance(sel, ast.FieldNode)}
    return ",".join(sorted(found)) or INVALID
