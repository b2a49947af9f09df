"""The template as CloudFormation would see it for given parameters, without deploying it:
conditions evaluated, `Fn::If` chosen, resources and outputs of false conditions dropped.
Other intrinsics (Ref, Sub, GetAtt) are left as they are, for the static IAM checks."""

from __future__ import annotations

from typing import Any


def parameter_values(template: dict, parameters: dict[str, str] | None = None) -> dict[str, Any]:
    values = {k: spec.get("Default", "") for k, spec in template["Parameters"].items()}
    values.update(parameters or {})
    for key, spec in template["Parameters"].items():
        if spec["Type"] == "CommaDelimitedList" and isinstance(values[key], str):
            values[key] = values[key].split(",")
    return values


def conditions(template: dict, parameters: dict[str, str] | None = None) -> dict[str, bool]:
    """Each condition's value (Fn::Equals, Not, And, Or, Condition over Ref and Join)."""
    values = parameter_values(template, parameters)
    out: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            return values[node["Ref"]]
        if isinstance(node, dict) and "Fn::Join" in node:
            sep, items = node["Fn::Join"]
            return sep.join(str(v) for v in (value(items) if isinstance(items, dict) else
                                             [value(i) for i in items]))
        return node

    def truth(node: dict) -> bool:
        (name, args), = node.items()
        if name == "Condition":
            return evaluate(args)
        if name == "Fn::Equals":
            return str(value(args[0])) == str(value(args[1]))
        if name == "Fn::Not":
            return not truth(args[0])
        if name == "Fn::And":
            return all(truth(a) for a in args)
        if name == "Fn::Or":
            return any(truth(a) for a in args)
        raise ValueError(f"unsupported condition function {name}")

    def evaluate(name: str) -> bool:
        if name not in out:
            out[name] = truth(template["Conditions"][name])
        return out[name]

    for name in template.get("Conditions", {}):
        evaluate(name)
    return out


def choose(node: Any, holds: dict[str, bool]) -> Any:
    """`node` with every Fn::If replaced by the branch its condition picks (AWS::NoValue
    items dropped from lists)."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            return choose(yes if holds[name] else no, holds)
        return {k: choose(v, holds) for k, v in node.items()}
    if isinstance(node, list):
        return [choose(v, holds) for v in node if choose(v, holds) != {"Ref": "AWS::NoValue"}]
    return node


def effective(template: dict, parameters: dict[str, str] | None = None) -> dict:
    """The template's Resources and Outputs as deployed with `parameters`."""
    holds = conditions(template, parameters)
    out = {}
    for section in ("Resources", "Outputs"):
        out[section] = {k: choose(v, holds) for k, v in template[section].items()
                        if holds.get(v.get("Condition", ""), True)}
    return out
