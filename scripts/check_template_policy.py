#!/usr/bin/env python3
"""Project rules for template.yaml that cfn-lint and `sam validate` do not enforce.

    python3 scripts/check_template_policy.py [template.yaml]
    python3 scripts/check_template_policy.py --self-test [template.yaml]

Fails (exit 1, one line per problem) when:

* IAM - a policy statement of a function (the inline `Policies` of an
  AWS::Serverless::Function, through any `!If` branch) or of an AWS::IAM::Role /
  AWS::IAM::Policy / AWS::IAM::ManagedPolicy / AWS::IAM::RolePolicy has an Action that is
  `*` or ends with `:*`, or a Resource that is a bare `*` (also as the whole text of a
  `!Sub`, a `!Join` of literals, or the default / allowed value of a referenced parameter);
  an Allow statement uses NotAction or NotResource; a function lists a managed policy
  (its content cannot be checked here). The template is also expanded offline with the
  SAM transform (aws-sam-translator, installed with aws-sam-cli) and the roles SAM
  generates are checked by the same rules; that is how SAM policy templates are checked.
  Without aws-sam-translator that step is skipped and any SAM policy template fails.
* Schedules - a Schedule / ScheduleV2 event, an AWS::Scheduler::Schedule or a scheduled
  AWS::Events::Rule target has no dead-letter queue.
* Logs - an AWS::Logs::LogGroup has no RetentionInDays, or a function's
  LoggingConfig.LogGroup (Globals merged) does not name such a group (a function without
  LoggingConfig.LogGroup needs a group named /aws/lambda/<its name>).
* Backup - a scheduled function (the backup) lacks `ReservedConcurrentExecutions: 1` or
  `Timeout: 900`, or there is no scheduled function at all.
* S3 - an S3 object action (Put/Get/DeleteObject, AbortMultipartUpload) on a whole bucket
  (`…:::bucket/*`) rather than under a key prefix, or `s3:ListBucket` without an
  `s3:prefix` condition.
* Pace - a function lacks a reserved concurrency (the Function URL is public: a flood must
  not take the account's concurrency) or a `WIX_PACE_SHARE`, or, for some allowed value of
  the parameters they depend on, the sum over functions of reserved concurrency x share is
  above 1 (the containers that can run at once would exceed the site's Wix budget).

--self-test runs the checks against small templates built in memory (one fault each) and
against the real template, and prints `N passed, M failed`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from typing import Any, Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TEMPLATE = os.path.join(ROOT, "template.yaml")

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTION = "AWS::Lambda::Function"
LOG_GROUP = "AWS::Logs::LogGroup"
SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")
# Managed policies a role may carry although their statements cannot be read here.
# (AWSXrayWriteOnlyAccess: what SAM attaches to a traced state machine; X-Ray writes only.)
ALLOWED_MANAGED_POLICIES = ("service-role/AWSLambdaBasicExecutionRole", "policy/AWSXrayWriteOnlyAccess")
NO_VALUE = {"Ref": "AWS::NoValue"}


# --------------------------------------------------------------------------- loading


def load_template(path: str) -> dict:
    """The template as plain dicts/lists/strings, intrinsic tags as their long form."""
    try:
        import cfnlint.decode  # type: ignore
    except ImportError:
        return _load_with_yaml(path)
    template, matches = cfnlint.decode.decode(path)
    if matches or template is None:
        raise SystemExit(f"{path}: cannot be parsed: " + "; ".join(str(m) for m in matches))
    return json.loads(json.dumps(template))


def _load_with_yaml(path: str) -> dict:
    import yaml  # type: ignore

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        if suffix == "Ref":
            return {"Ref": value}
        if suffix == "GetAtt" and isinstance(value, str):
            return {"Fn::GetAtt": value.split(".", 1)}
        if suffix == "Condition":
            return {"Condition": value}
        return {f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)  # noqa: S506 - SafeLoader subclass


# --------------------------------------------------------------------------- values


def _is_no_value(value: Any) -> bool:
    return value == NO_VALUE


def literal_texts(value: Any, template: dict) -> list[str]:
    """Every concrete text `value` may become: both `!If` branches, a parameter's default
    and allowed values, `!Sub` with parameter defaults filled in, a `!Join` of literals.
    References to resources and attributes give nothing (they are ARNs, never `*`)."""
    params = template.get("Parameters") or {}
    if value is None or _is_no_value(value):
        return []
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, (str, int, float)):
        return [str(value)]
    if isinstance(value, list):
        return [t for item in value for t in literal_texts(item, template)]
    if not isinstance(value, dict) or len(value) != 1:
        return []
    (key, arg), = value.items()
    if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
        return literal_texts(arg[1], template) + literal_texts(arg[2], template)
    if key == "Ref" and isinstance(arg, str) and arg in params:
        p = params[arg] or {}
        out = [str(p["Default"])] if "Default" in p else []
        out += [str(v) for v in p.get("AllowedValues") or []]
        return out
    if key == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
        if not isinstance(text, str):
            return []

        def fill(m: re.Match) -> str:
            name = m.group(1)
            if isinstance(variables, dict) and name in variables:
                options = literal_texts(variables[name], template)
            elif name in params and "Default" in (params[name] or {}):
                options = [str(params[name]["Default"])]
            else:
                options = []
            return options[0] if len(options) == 1 else m.group(0)

        return [re.sub(r"\$\{([^}!][^}]*)\}", fill, text)]
    if key == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
        parts = [literal_texts(p, template) for p in arg[1]]
        if all(len(p) == 1 for p in parts):
            return [str(arg[0]).join(p[0] for p in parts)]
        return []
    return []


def branches(value: Any, where: str) -> Iterator[tuple[Any, str]]:
    """`value`, or each branch of an `!If` (nested), without AWS::NoValue."""
    if _is_no_value(value) or value is None:
        return
    if isinstance(value, dict) and set(value) == {"Fn::If"} and isinstance(value["Fn::If"], list):
        args = value["Fn::If"]
        if len(args) == 3:
            yield from branches(args[1], f"{where}/Fn::If[true]")
            yield from branches(args[2], f"{where}/Fn::If[false]")
            return
    yield value, where


def as_list(value: Any, where: str) -> Iterator[tuple[Any, str]]:
    """Items of a list-or-single value, through `!If` branches at both levels."""
    for v, w in branches(value, where):
        if isinstance(v, list):
            for i, item in enumerate(v):
                yield from branches(item, f"{w}[{i}]")
        else:
            yield v, w


# --------------------------------------------------------------------------- checks


def merged_function_properties(template: dict, resource: dict) -> dict:
    """A SAM function's properties with Globals.Function merged in (maps merge, the
    function's own value wins)."""
    props = copy.deepcopy(resource.get("Properties") or {})
    if resource.get("Type") != SERVERLESS_FUNCTION:
        return props
    globals_ = ((template.get("Globals") or {}).get("Function")) or {}

    def merge(base: Any, own: Any) -> Any:
        if isinstance(base, dict) and isinstance(own, dict):
            out = dict(base)
            for k, v in own.items():
                out[k] = merge(base.get(k), v) if k in base else v
            return out
        return own

    for key, value in globals_.items():
        props[key] = merge(value, props[key]) if key in props else copy.deepcopy(value)
    return props


def check_statement(stmt: Any, where: str, template: dict, problems: list[str]) -> None:
    if not isinstance(stmt, dict):
        return
    effect = stmt.get("Effect", "Allow")
    if effect == "Allow":
        for key in ("NotAction", "NotResource"):
            if key in stmt:
                problems.append(f"IAM: {where}: an Allow statement with {key} grants everything else")
    for action, w in as_list(stmt.get("Action"), f"{where}/Action"):
        for text in literal_texts(action, template):
            t = text.strip()
            if t == "*" or t.endswith(":*"):
                problems.append(f"IAM: {w}: action {t!r} is a wildcard")
    actions = {t.strip() for a, _ in as_list(stmt.get("Action"), where) for t in literal_texts(a, template)}
    resourceless = bool(actions) and actions <= RESOURCELESS_ACTIONS
    for resource, w in as_list(stmt.get("Resource"), f"{where}/Resource"):
        for text in literal_texts(resource, template):
            if text.strip() == "*" and not resourceless:
                problems.append(f"IAM: {w}: resource '*' (name the exact ARN)")
    check_s3_scope(stmt, where, problems)


# Actions that IAM authorizes on no resource type, so `*` is their only Resource: a task
# token's answers, log delivery of a state machine, X-Ray. A statement may give `*` only
# when every action in it is one of these.
RESOURCELESS_ACTIONS = {
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}

S3_OBJECT_ACTIONS = {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}


def _texts(value: Any) -> list[str]:
    """Every string inside a value, a !Sub's template included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    return []


def check_s3_scope(stmt: dict, where: str, problems: list[str]) -> None:
    """S3 object actions only under a key prefix, s3:ListBucket only with an s3:prefix condition."""
    actions = {a for a in _texts(stmt.get("Action")) if a.startswith("s3:")}
    if actions & S3_OBJECT_ACTIONS:
        for text in _texts(stmt.get("Resource")):
            if text.startswith("arn:") and re.search(r":::[^/]*/\*$", text):
                problems.append(f"S3: {where}: object actions on a whole bucket ({text}); scope them to the prefix")
    if "s3:ListBucket" in actions and "s3:prefix" not in json.dumps(stmt.get("Condition") or {}):
        problems.append(f"S3: {where}: s3:ListBucket without an s3:prefix condition lists the whole bucket")


def check_policy_document(doc: Any, where: str, template: dict, problems: list[str]) -> None:
    for d, w in branches(doc, where):
        if not isinstance(d, dict):
            continue
        for stmt, sw in as_list(d.get("Statement"), f"{w}/Statement"):
            check_statement(stmt, sw, template, problems)


def check_managed_arns(arns: Any, where: str, problems: list[str]) -> None:
    for arn, w in as_list(arns, where):
        text = arn if isinstance(arn, str) else json.dumps(arn)
        if not any(text.endswith(allowed) for allowed in ALLOWED_MANAGED_POLICIES):
            problems.append(f"IAM: {w}: managed policy {text} cannot be checked; use inline statements")


def check_iam(template: dict, problems: list[str], only: set[str] | None = None, label: str = "") -> None:
    for name, res in (template.get("Resources") or {}).items():
        if only is not None and name not in only:
            continue
        rtype = (res or {}).get("Type")
        props = (res or {}).get("Properties") or {}
        base = f"{label}Resources/{name}"
        if rtype in (SERVERLESS_FUNCTION, "AWS::Serverless::StateMachine"):
            for policy, w in as_list(props.get("Policies"), f"{base}/Policies"):
                if isinstance(policy, str):
                    check_managed_arns(policy, w, problems)
                elif isinstance(policy, dict) and "Statement" in policy:
                    check_policy_document(policy, w, template, problems)
                elif isinstance(policy, dict) and len(policy) == 1 and not sam_available():
                    problems.append(
                        f"IAM: {w}: SAM policy template {next(iter(policy))} needs the SAM "
                        "transform to be checked (install aws-sam-translator)"
                    )
        elif rtype == "AWS::IAM::Role":
            for policy, w in as_list(props.get("Policies"), f"{base}/Policies"):
                if isinstance(policy, dict):
                    check_policy_document(policy.get("PolicyDocument"), f"{w}/PolicyDocument", template, problems)
            check_managed_arns(props.get("ManagedPolicyArns"), f"{base}/ManagedPolicyArns", problems)
        elif rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            check_policy_document(props.get("PolicyDocument"), f"{base}/PolicyDocument", template, problems)


def _has_dlq(config: Any) -> bool:
    return isinstance(config, dict) and bool(config.get("Arn") or config.get("Type"))


def scheduled_functions(template: dict) -> list[str]:
    out = []
    for name, res in (template.get("Resources") or {}).items():
        if (res or {}).get("Type") != SERVERLESS_FUNCTION:
            continue
        events = ((res.get("Properties") or {}).get("Events")) or {}
        if any((e or {}).get("Type") in SCHEDULE_EVENT_TYPES for e in events.values()):
            out.append(name)
    return out


def check_schedules(template: dict, problems: list[str]) -> None:
    for name, res in (template.get("Resources") or {}).items():
        rtype = (res or {}).get("Type")
        props = (res or {}).get("Properties") or {}
        if rtype in (SERVERLESS_FUNCTION, "AWS::Serverless::StateMachine"):
            for ev_name, ev in (props.get("Events") or {}).items():
                if (ev or {}).get("Type") in SCHEDULE_EVENT_TYPES:
                    if not _has_dlq(((ev.get("Properties")) or {}).get("DeadLetterConfig")):
                        problems.append(
                            f"Schedule: Resources/{name}/Events/{ev_name} ({ev['Type']}) has no DeadLetterConfig"
                        )
        elif rtype == "AWS::Scheduler::Schedule":
            target = props.get("Target") or {}
            if not _has_dlq(target.get("DeadLetterConfig")):
                problems.append(f"Schedule: Resources/{name} (AWS::Scheduler::Schedule) has no Target.DeadLetterConfig")
        elif rtype == "AWS::Events::Rule" and props.get("ScheduleExpression"):
            for target, w in as_list(props.get("Targets"), f"Resources/{name}/Targets"):
                if not _has_dlq((target or {}).get("DeadLetterConfig")):
                    problems.append(f"Schedule: {w} (scheduled AWS::Events::Rule) has no DeadLetterConfig")


def check_logs(template: dict, problems: list[str]) -> None:
    resources = template.get("Resources") or {}
    groups = {n: r for n, r in resources.items() if (r or {}).get("Type") == LOG_GROUP}
    with_retention = set()
    for name, res in groups.items():
        retention = (res.get("Properties") or {}).get("RetentionInDays")
        if retention is None or _is_no_value(retention):
            problems.append(f"Logs: Resources/{name} has no RetentionInDays (logs kept forever)")
        else:
            with_retention.add(name)
    names = {
        json.dumps((groups[n].get("Properties") or {}).get("LogGroupName"), sort_keys=True): n for n in with_retention
    }
    for name, res in resources.items():
        if (res or {}).get("Type") not in (SERVERLESS_FUNCTION, LAMBDA_FUNCTION):
            continue
        props = merged_function_properties(template, res)
        target = (props.get("LoggingConfig") or {}).get("LogGroup")
        where = f"Logs: Resources/{name}"
        if target is None or _is_no_value(target):
            default_name = json.dumps({"Fn::Sub": f"/aws/lambda/${{{name}}}"}, sort_keys=True)
            if default_name not in names:
                problems.append(
                    f"{where} has no LoggingConfig.LogGroup and no log group /aws/lambda/${{{name}}} with RetentionInDays"
                )
        elif isinstance(target, dict) and set(target) == {"Ref"}:
            ref = target["Ref"]
            if ref not in groups:
                problems.append(f"{where}: LoggingConfig.LogGroup refers to {ref}, which is not an {LOG_GROUP}")
            elif ref not in with_retention:
                problems.append(f"{where}: LoggingConfig.LogGroup {ref} has no RetentionInDays")
        elif json.dumps(target, sort_keys=True) not in names:
            problems.append(
                f"{where}: LoggingConfig.LogGroup {json.dumps(target)} is not the name of a log group "
                "in this template with RetentionInDays"
            )


def _shown(value: Any) -> str:
    return "none" if value is None else json.dumps(value)


def check_backup(template: dict, problems: list[str]) -> None:
    backups = scheduled_functions(template)
    if not backups:
        problems.append("Backup: no function has a Schedule/ScheduleV2 event (the scheduled backup is missing)")
    for name in backups:
        props = merged_function_properties(template, template["Resources"][name])
        rce = props.get("ReservedConcurrentExecutions")
        if str(rce) != "1":
            problems.append(
                f"Backup: Resources/{name} needs ReservedConcurrentExecutions: 1 (has {_shown(rce)}): "
                "two backups at once would share one Wix rate limit"
            )
        timeout = props.get("Timeout")
        if str(timeout) != "900":
            problems.append(f"Backup: Resources/{name} needs Timeout: 900 (has {_shown(timeout)})")


def _resolve(value: Any, template: dict, assignment: dict[str, Any]) -> Any:
    """A literal, a Ref to an assigned parameter, or a FindInMap over those."""
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref":
            return assignment.get(arg)
        if fn == "Fn::FindInMap" and isinstance(arg, list) and len(arg) == 3:
            keys = [_resolve(a, template, assignment) for a in arg]
            try:
                return template["Mappings"][str(keys[0])][str(keys[1])][str(keys[2])]
            except (KeyError, TypeError):
                return None
        return None
    return value


def _refs(value: Any) -> set[str]:
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return {value["Ref"]}
        return set().union(*(_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value)) if value else set()
    return set()


def check_pace(template: dict, problems: list[str]) -> None:
    resources = template.get("Resources") or {}
    functions = {n: merged_function_properties(template, r) for n, r in resources.items() if (r or {}).get("Type") == SERVERLESS_FUNCTION}
    parts: dict[str, tuple[Any, Any]] = {}
    for name, props in functions.items():
        rce = props.get("ReservedConcurrentExecutions")
        share = ((props.get("Environment") or {}).get("Variables") or {}).get("WIX_PACE_SHARE")
        if rce is None:
            problems.append(f"Pace: Resources/{name} has no ReservedConcurrentExecutions")
        if share is None:
            problems.append(f"Pace: Resources/{name} has no WIX_PACE_SHARE")
        if rce is not None and share is not None:
            parts[name] = (rce, share)
    params = sorted(set().union(*(_refs(v) for pair in parts.values() for v in pair)) if parts else set())
    choices: list[list[Any]] = []
    for p in params:
        spec = (template.get("Parameters") or {}).get(p) or {}
        allowed = spec.get("AllowedValues") or ([spec["Default"]] if "Default" in spec else [])
        if not allowed:
            problems.append(f"Pace: parameter {p} has neither AllowedValues nor a Default to check")
            return
        choices.append(allowed)
    import itertools

    for combo in itertools.product(*choices):
        assignment = dict(zip(params, combo))
        total = 0.0
        for name, (rce, share) in parts.items():
            r, sh = _resolve(rce, template, assignment), _resolve(share, template, assignment)
            try:
                total += float(r) * float(sh)
            except (TypeError, ValueError):
                problems.append(f"Pace: Resources/{name}: cannot evaluate concurrency {_shown(r)} x share {_shown(sh)} for {assignment}")
                return
        if total > 1.0 + 1e-9:
            problems.append(f"Pace: the functions' containers may take {total:.3f} of the site's Wix budget with {assignment}")


# --------------------------------------------------------------------------- jobs


def _definition_text(props: dict) -> str | None:
    if "DefinitionUri" in props and isinstance(props["DefinitionUri"], str):
        path = os.path.join(ROOT, props["DefinitionUri"])
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return f.read()
    if isinstance(props.get("Definition"), dict):
        return json.dumps(props["Definition"])
    return None


def _states(states: dict, where: str) -> Iterator[tuple[str, dict, str]]:
    """Every state, nested ones (a Map's ItemProcessor, a Parallel's Branches) included."""
    for name, state in (states or {}).items():
        if not isinstance(state, dict):
            continue
        w = f"{where}/{name}"
        yield name, state, w
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from _states(state[key].get("States") or {}, f"{w}/{key}")
        for i, branch in enumerate(state.get("Branches") or []):
            yield from _states((branch or {}).get("States") or {}, f"{w}/Branches[{i}]")


def _ref_name(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else str(att).split(".")[0]
    return None


def _emitted_metrics() -> set[str] | None:
    """The metric names src/metrics.rs writes (None when the source is not beside the script)."""
    path = os.path.join(ROOT, "src", "metrics.rs")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return set(re.findall(r'\("([A-Za-z]+)"\.into\(\)', text))


def _sub_bodies(value: Any) -> list[str]:
    """Every text a `!Sub` (or a literal) may become, each `${…}` left for the caller; both
    branches of every `!If` among its variables."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict) or len(value) != 1:
        return []
    (key, arg), = value.items()
    if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
        return _sub_bodies(arg[1]) + _sub_bodies(arg[2])
    if key != "Fn::Sub":
        return []
    if isinstance(arg, str):
        return [arg]
    text, variables = arg[0], (arg[1] if len(arg) > 1 else {}) or {}
    out = [text]
    for name, var in variables.items():
        out = [t.replace("${" + name + "}", option) for t in out for option in _sub_bodies(var)]
    return out


def check_observability(template: dict, problems: list[str]) -> None:
    """Active tracing; the dashboard is JSON in every configuration; every alarm notifies the
    stack's topic; the WixMediaArchiver metrics named by alarms and dashboard are emitted."""
    resources = template.get("Resources") or {}
    globals_fn = ((template.get("Globals") or {}).get("Function")) or {}
    for name, r in resources.items():
        if (r or {}).get("Type") == SERVERLESS_FUNCTION:
            tracing = ((r.get("Properties") or {}).get("Tracing")) or globals_fn.get("Tracing")
            if tracing != "Active":
                problems.append(f"Observability: Resources/{name}: Tracing is not Active")
    emitted = _emitted_metrics()
    named: set[str] = set()
    dashboards = 0
    for name, r in resources.items():
        r = r or {}
        props = r.get("Properties") or {}
        if r.get("Type") == "AWS::CloudWatch::Dashboard":
            dashboards += 1
            for body in _sub_bodies(props.get("DashboardBody")):
                text = re.sub(r"\$\{[^}]*\}", "0", body)
                try:
                    doc = json.loads(text)
                except ValueError as e:
                    problems.append(f"Observability: Resources/{name}: DashboardBody is not JSON ({e})")
                    continue
                for widget in doc.get("widgets", []):
                    for metric in (widget.get("properties") or {}).get("metrics", []):
                        if metric and metric[0] == "WixMediaArchiver":
                            named.add(metric[1])
        if r.get("Type") == "AWS::CloudWatch::Alarm":
            actions = json.dumps(props.get("AlarmActions"))
            if '"Ref": "AlarmTopic"' not in actions:
                problems.append(f"Observability: Resources/{name}: the alarm does not notify AlarmTopic")
            if props.get("Namespace") == "WixMediaArchiver":
                named.add(str(props.get("MetricName")))
    if dashboards == 0:
        problems.append("Observability: no CloudWatch dashboard")
    if emitted is not None:
        for metric in sorted(named - emitted):
            problems.append(f"Observability: metric WixMediaArchiver/{metric} is named but src/metrics.rs never emits it")


def check_jobs(template: dict, problems: list[str]) -> None:
    """A state machine logs (without execution data) to a kept log group and is traced; its
    definition's placeholders are exactly its substitutions; every Task retries a timed-out
    or silent worker; a Distributed Map tolerates every failure, reads its items from S3,
    writes its results to S3, and works as many items at once as the job queue's event
    source mapping delivers; the job queue has a dead-letter queue, a visibility timeout of
    at least six worker timeouts and partial batch failures; every state machine and every
    dead-letter queue has an alarm; DynamoDB tables are on-demand with a TTL."""
    resources = template.get("Resources") or {}
    alarms = [r for r in resources.values() if (r or {}).get("Type") == "AWS::CloudWatch::Alarm"]
    alarm_text = [json.dumps(a.get("Properties") or {}) for a in alarms]
    mappings = {n: r for n, r in resources.items() if (r or {}).get("Type") == "AWS::Lambda::EventSourceMapping"}
    for name, res in resources.items():
        rtype = (res or {}).get("Type")
        props = (res or {}).get("Properties") or {}
        where = f"Jobs: Resources/{name}"
        if rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            logging_ = props.get("Logging") or props.get("LoggingConfiguration") or {}
            groups = [_ref_name(((d or {}).get("CloudWatchLogsLogGroup") or {}).get("LogGroupArn")) for d in logging_.get("Destinations") or []]
            if not any(g and ((resources.get(g) or {}).get("Properties") or {}).get("RetentionInDays") for g in groups):
                problems.append(f"{where}: logs to no log group with a retention")
            if logging_.get("IncludeExecutionData") not in (False, "false", None):
                problems.append(f"{where}: logs execution data (task tokens, outputs)")
            tracing = props.get("Tracing") or props.get("TracingConfiguration") or {}
            if tracing.get("Enabled") not in (True, "true"):
                problems.append(f"{where}: X-Ray tracing is off")
            if not any(json.dumps({"Ref": name}) in t and "Executions" in t for t in alarm_text):
                problems.append(f"{where}: no alarm on its failed executions")
            text = _definition_text(props)
            if text is None:
                problems.append(f"{where}: its definition cannot be read")
                continue
            subs = props.get("DefinitionSubstitutions") or {}
            placeholders = set(re.findall(r"\$\{(\w+)\}", text))
            for missing in sorted(placeholders - set(subs)):
                problems.append(f"{where}: ${{{missing}}} of the definition has no DefinitionSubstitutions entry")
            for unused in sorted(set(subs) - placeholders):
                problems.append(f"{where}: DefinitionSubstitutions.{unused} is not in the definition")
            dummy = re.sub(r'"\$\{\w+\}"', '"x"', text)
            dummy = re.sub(r"\$\{\w+\}", "1", dummy)
            try:
                definition = json.loads(dummy)
            except ValueError as e:
                problems.append(f"{where}: the substituted definition is not JSON ({e})")
                continue
            for state_name, state, w in _states(definition.get("States") or {}, f"{where}/definition"):
                if state.get("Type") == "Task":
                    caught = {e for r in state.get("Retry") or [] for e in (r or {}).get("ErrorEquals") or []}
                    for needed in ("States.Timeout", "States.HeartbeatTimeout"):
                        if needed not in caught and "States.ALL" not in caught:
                            problems.append(f"{w}: no Retry on {needed} (a worker that died or went silent)")
                    if ".waitForTaskToken" in str(state.get("Resource")) and "HeartbeatSeconds" not in state and "HeartbeatSecondsPath" not in state:
                        problems.append(f"{w}: a callback task without HeartbeatSeconds waits forever for a dead worker")
                if state.get("Type") == "Map" and ((state.get("ItemProcessor") or {}).get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED":
                    if float(state.get("ToleratedFailurePercentage", 0)) != 100.0:
                        problems.append(f"{w}: ToleratedFailurePercentage must be 100 (a bad batch is reported, not fatal)")
                    if "ItemReader" not in state:
                        problems.append(f"{w}: no S3 ItemReader")
                    if "ResultWriter" not in state:
                        problems.append(f"{w}: no ResultWriter (the results would ride in the state)")
                    raw = re.search(r'"MaxConcurrency":\s*"?\$\{(\w+)\}', text)
                    concurrency = subs.get(raw.group(1)) if raw else None
                    esm = [m for m in mappings.values() if ((m.get("Properties") or {}).get("ScalingConfig") or {}).get("MaximumConcurrency") == concurrency]
                    if concurrency is None or not esm:
                        problems.append(f"{w}: MaxConcurrency is not the job queue's MaximumConcurrency (queued steps would miss their heartbeats)")
            queues = [q for q in map(_ref_name, subs.values()) if (resources.get(q) or {}).get("Type") == "AWS::SQS::Queue"]
            for queue in queues:
                qprops = (resources.get(queue) or {}).get("Properties") or {}
                if "RedrivePolicy" not in qprops:
                    problems.append(f"Jobs: Resources/{queue}: the job queue has no dead-letter queue")
                esms = [m for m in mappings.values() if _ref_name((m.get("Properties") or {}).get("EventSourceArn")) == queue]
                if not esms:
                    problems.append(f"Jobs: Resources/{queue}: no event source mapping takes its messages")
                for m in esms:
                    mp = m.get("Properties") or {}
                    if "ReportBatchItemFailures" not in (mp.get("FunctionResponseTypes") or []):
                        problems.append(f"Jobs: Resources/{queue}: its event source mapping does not report partial batch failures")
                    fn = _ref_name(mp.get("FunctionName"))
                    timeout = merged_function_properties(template, resources.get(fn) or {}).get("Timeout", 3)
                    try:
                        if int(qprops.get("VisibilityTimeout", 30)) < 6 * int(timeout):
                            problems.append(f"Jobs: Resources/{queue}: VisibilityTimeout below six times {fn}'s Timeout")
                    except (TypeError, ValueError):
                        pass
        if rtype == "AWS::DynamoDB::Table":
            if props.get("BillingMode") != "PAY_PER_REQUEST":
                problems.append(f"{where}: not on-demand (BillingMode PAY_PER_REQUEST)")
            if (props.get("TimeToLiveSpecification") or {}).get("Enabled") not in (True, "true"):
                problems.append(f"{where}: no TTL (its items would stay forever)")
    # Every dead-letter queue has an alarm.
    dlqs = set()
    for res in resources.values():
        props = (res or {}).get("Properties") or {}
        target = (props.get("RedrivePolicy") or {}).get("deadLetterTargetArn")
        if _ref_name(target):
            dlqs.add(_ref_name(target))
    for fn in resources.values():
        text = json.dumps((fn or {}).get("Properties") or {})
        for m in re.finditer(r'"(?:DeadLetterConfig|OnFailure)": \{[^{}]*"(?:Arn|Destination)": \{"Fn::GetAtt": \["(\w+)"', text):
            dlqs.add(m.group(1))
    for q in sorted(dlqs):
        if (resources.get(q) or {}).get("Type") != "AWS::SQS::Queue":
            continue
        if not any(f'"{q}"' in t and "ApproximateNumberOfMessagesVisible" in t for t in alarm_text):
            problems.append(f"Jobs: Resources/{q}: a dead-letter queue without an alarm")


# --------------------------------------------------------------------------- SAM transform

_SAM: bool | None = None


def sam_available() -> bool:
    global _SAM
    if _SAM is None:
        try:
            import samtranslator.translator.transform  # type: ignore  # noqa: F401

            _SAM = True
        except ImportError:
            _SAM = False
    return _SAM


def check_transformed(template: dict, problems: list[str]) -> str:
    """Expands the SAM template offline and checks the IAM roles SAM generates."""
    if not sam_available():
        return "skipped (aws-sam-translator is not installed)"
    if "AWS::Serverless-2016-10-31" not in json.dumps(template.get("Transform")):
        return "not a SAM template"
    import logging

    from samtranslator.translator.transform import transform  # type: ignore

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # its metrics warnings

    class NoManagedPolicies:
        def load(self) -> dict:
            return {}

    doc = copy.deepcopy(template)
    # The transform wants S3 code locations; `sam validate` does the same substitution.
    doc.setdefault("Globals", {}).setdefault("Function", {})
    for res in (doc.get("Resources") or {}).values():
        if (res or {}).get("Type") == SERVERLESS_FUNCTION:
            (res.setdefault("Properties", {}))["CodeUri"] = "s3://bucket/key"
        if (res or {}).get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in (res.get("Properties") or {}):
            res["Properties"]["DefinitionUri"] = "s3://bucket/definition.asl.json"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        expanded = transform(doc, {}, NoManagedPolicies())
    except Exception as e:  # noqa: BLE001 - any failure of the transform is a finding
        problems.append(f"SAM: the transform failed: {e}")
        return "failed"
    own = set((template.get("Resources") or {}).keys())
    generated = {n for n in (expanded.get("Resources") or {}) if n not in own}
    check_iam(expanded, problems, only=generated, label="(SAM-generated) ")
    roles = sorted(n for n in generated if expanded["Resources"][n].get("Type") == "AWS::IAM::Role")
    return f"{len(roles)} generated roles: {', '.join(roles)}"


# --------------------------------------------------------------------------- driver


def run_checks(template: dict, verbose: bool = False) -> list[str]:
    problems: list[str] = []
    steps = [
        ("IAM statements (no '*' actions or resources)", check_iam),
        ("schedules have a dead-letter queue", check_schedules),
        ("log groups have a retention and every function uses one", check_logs),
        ("the backup function: ReservedConcurrentExecutions 1, Timeout 900", check_backup),
        ("reserved concurrency x pace share within the site's budget", check_pace),
        ("jobs: state machine, job queue, alarms, pace table", check_jobs),
        ("tracing, dashboard JSON, alarm actions, emitted metrics", check_observability),
    ]
    for title, step in steps:
        before = len(problems)
        step(template, problems)
        if verbose:
            print(f"  {'ok  ' if len(problems) == before else 'FAIL'} {title}")
    before = len(problems)
    note = check_transformed(template, problems)
    if verbose:
        print(f"  {'ok  ' if len(problems) == before else 'FAIL'} IAM of the SAM-expanded template ({note})")
    return problems


def check_file(path: str) -> int:
    print(f"check_template_policy: {path}")
    template = load_template(path)
    fns = [n for n, r in (template.get("Resources") or {}).items() if (r or {}).get("Type") == SERVERLESS_FUNCTION]
    print(f"  functions: {', '.join(fns) or 'none'}; scheduled: {', '.join(scheduled_functions(template)) or 'none'}")
    problems = run_checks(template, verbose=True)
    for p in problems:
        print(f"ERROR {p}", file=sys.stderr)
    print(f"check_template_policy: {'FAILED, ' + str(len(problems)) + ' problem(s)' if problems else 'passed'}")
    return 1 if problems else 0


# --------------------------------------------------------------------------- self-test


def _base() -> dict:
    """A small template that passes every check."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {
            "SecretArn": {"Type": "String", "Default": ""},
            "ParamName": {"Type": "String", "Default": "/wix/x"},
            "HttpConcurrency": {"Type": "Number", "Default": 2, "AllowedValues": [1, 2]},
        },
        "Mappings": {"Share": {"1": {"Http": "0.5"}, "2": {"Http": "0.25"}}},
        "Conditions": {"HasSecret": {"Fn::Not": [{"Fn::Equals": [{"Ref": "SecretArn"}, ""]}]}},
        "Globals": {
            "Function": {
                "Runtime": "provided.al2023",
                "Handler": "bootstrap",
                "CodeUri": ".",
                "LoggingConfig": {"LogFormat": "JSON"},
                "Tracing": "Active",
            }
        },
        "Resources": {
            "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {}},
            "Board": {
                "Type": "AWS::CloudWatch::Dashboard",
                "Properties": {
                    "DashboardBody": {
                        "Fn::Sub": '{"widgets": [{"type": "metric", "properties": {"metrics": '
                        '[["WixMediaArchiver", "WixCalls", "Service", "${AWS::StackName}"]]}}]}'
                    }
                },
            },
            "Http": {
                "Type": SERVERLESS_FUNCTION,
                "Properties": {
                    "Timeout": 120,
                    "ReservedConcurrentExecutions": {"Ref": "HttpConcurrency"},
                    "Environment": {"Variables": {"WIX_PACE_SHARE": {"Fn::FindInMap": ["Share", {"Ref": "HttpConcurrency"}, "Http"]}}},
                    "LoggingConfig": {"LogGroup": {"Ref": "HttpLogs"}},
                    "Policies": [
                        {
                            "Fn::If": [
                                "HasSecret",
                                {
                                    "Statement": [
                                        {
                                            "Effect": "Allow",
                                            "Action": "secretsmanager:GetSecretValue",
                                            "Resource": {"Ref": "SecretArn"},
                                        }
                                    ]
                                },
                                NO_VALUE,
                            ]
                        },
                        {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["ssm:GetParameter"],
                                    "Resource": {
                                        "Fn::Join": [
                                            "/",
                                            {
                                                "Fn::Split": [
                                                    "//",
                                                    {
                                                        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:"
                                                        "${AWS::AccountId}:parameter/${ParamName}"
                                                    },
                                                ]
                                            },
                                        ]
                                    },
                                }
                            ]
                        },
                    ],
                },
            },
            "HttpLogs": {"Type": LOG_GROUP, "Properties": {"RetentionInDays": 30}},
            "Backup": {
                "Type": SERVERLESS_FUNCTION,
                "Properties": {
                    "Timeout": 900,
                    "ReservedConcurrentExecutions": 1,
                    "Environment": {"Variables": {"WIX_PACE_SHARE": "0.5"}},
                    "LoggingConfig": {"LogGroup": {"Ref": "BackupLogs"}},
                    "Events": {
                        "Weekly": {
                            "Type": "ScheduleV2",
                            "Properties": {
                                "ScheduleExpression": "rate(7 days)",
                                "Input": '{"backup": {}}',
                                "DeadLetterConfig": {"Type": "SQS"},
                            },
                        }
                    },
                },
            },
            "BackupLogs": {
                "Type": LOG_GROUP,
                "Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${AWS::StackName}-b"}, "RetentionInDays": 7},
            },
        },
    }


def _stmt(t: dict, fn: str = "Http", index: int = 1) -> dict:
    return t["Resources"][fn]["Properties"]["Policies"][index]["Statement"][0]


def _add_policy(t: dict, policy: Any, fn: str = "Http") -> None:
    t["Resources"][fn]["Properties"]["Policies"].append(policy)


def _jobs(t: dict) -> dict:
    """Adds a minimal job engine that passes every check: a state machine (callback tasks,
    a Distributed Map), its queue with a dead-letter queue, the worker's event source
    mapping, alarms, a pace table."""
    retry = [{"ErrorEquals": ["States.Timeout", "States.HeartbeatTimeout"], "JitterStrategy": "FULL"}]
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": "${Queue}", "MessageBody": {"token.$": "$$.Task.Token"}},
        "HeartbeatSeconds": 300,
        "Retry": retry,
    }
    definition = {
        "StartAt": "Plan",
        "States": {
            "Plan": dict(task, Next="Batches"),
            "Batches": {
                "Type": "Map",
                "MaxConcurrency": "${Concurrency}",
                "ToleratedFailurePercentage": 100.0,
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
                "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Batch",
                    "States": {"Batch": dict(task, End=True)},
                },
                "End": True,
            },
        },
    }
    t["Parameters"]["Workers"] = {"Type": "Number", "Default": 3}
    r = t["Resources"]
    r["Machine"] = {
        "Type": "AWS::Serverless::StateMachine",
        "Properties": {
            "Definition": definition,
            "DefinitionSubstitutions": {"Queue": {"Ref": "Steps"}, "Concurrency": {"Ref": "Workers"}},
            "Logging": {
                "Level": "ERROR",
                "IncludeExecutionData": False,
                "Destinations": [{"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["MachineLogs", "Arn"]}}}],
            },
            "Tracing": {"Enabled": True},
        },
    }
    r["MachineLogs"] = {"Type": LOG_GROUP, "Properties": {"RetentionInDays": 30}}
    r["Steps"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "VisibilityTimeout": 5400,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["StepsDlq", "Arn"]}, "maxReceiveCount": 5},
        },
    }
    r["StepsDlq"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
    r["Worker"] = copy.deepcopy(r["Backup"])
    del r["Worker"]["Properties"]["Events"]
    r["Worker"]["Properties"]["Environment"]["Variables"]["WIX_PACE_SHARE"] = "0.01"
    r["Backup"]["Properties"]["Environment"]["Variables"]["WIX_PACE_SHARE"] = "0.49"
    r["StepsMapping"] = {
        "Type": "AWS::Lambda::EventSourceMapping",
        "Properties": {
            "EventSourceArn": {"Fn::GetAtt": ["Steps", "Arn"]},
            "FunctionName": {"Ref": "Worker"},
            "ScalingConfig": {"MaximumConcurrency": {"Ref": "Workers"}},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    }
    r["FailedAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "MetricName": "ExecutionsFailed",
            "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": "Machine"}}],
            "AlarmActions": [{"Ref": "AlarmTopic"}],
        },
    }
    r["DlqAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["StepsDlq", "QueueName"]}}],
            "AlarmActions": [{"Ref": "AlarmTopic"}],
        },
    }
    r["Pace"] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {"BillingMode": "PAY_PER_REQUEST", "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": True}},
    }
    return definition


def _self_test_cases() -> list[tuple[str, Any, str | None]]:
    """(name, mutation of the base template, expected text of a problem or None = passes)."""

    def star_action(t):
        _stmt(t)["Action"] = "*"

    def service_star_in_if(t):
        _add_policy(
            t,
            {
                "Fn::If": [
                    "HasSecret",
                    NO_VALUE,
                    {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:*"], "Resource": "arn:aws:s3:::b"}]},
                ]
            },
        )

    def star_resource(t):
        _stmt(t)["Resource"] = "*"

    def star_resource_sub_in_if(t):
        _stmt(t)["Resource"] = {"Fn::If": ["HasSecret", {"Ref": "SecretArn"}, {"Fn::Sub": "*"}]}

    def star_resource_in_list(t):
        _stmt(t)["Resource"] = ["arn:aws:ssm:us-east-1:123456789012:parameter/x", "*"]

    def star_resource_from_parameter(t):
        t["Parameters"]["Anything"] = {"Type": "String", "Default": "*"}
        _stmt(t)["Resource"] = {"Ref": "Anything"}

    def star_action_from_parameter(t):
        t["Parameters"]["Act"] = {"Type": "String", "Default": "ssm:*"}
        _stmt(t)["Action"] = {"Ref": "Act"}

    def statement_list_in_if(t):
        _add_policy(t, {"Statement": {"Fn::If": ["HasSecret", [{"Effect": "Allow", "Action": "*", "Resource": "x"}], NO_VALUE]}})

    def iam_role_star(t):
        t["Resources"]["ExtraRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {},
                "Policies": [
                    {"PolicyName": "p", "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "arn:aws:sqs:us-east-1:1:q"}]}}
                ],
            },
        }

    def iam_policy_star_resource(t):
        t["Resources"]["ExtraPolicy"] = {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "PolicyName": "p",
                "Roles": ["r"],
                "PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]},
            },
        }

    def not_action(t):
        s = _stmt(t)
        s["NotAction"] = s.pop("Action")

    def managed_policy(t):
        _add_policy(t, "AmazonS3FullAccess")

    def broad_policy_template(t):
        _add_policy(t, {"CloudWatchPutMetricPolicy": {}})

    def schedule_without_dlq(t):
        del t["Resources"]["Backup"]["Properties"]["Events"]["Weekly"]["Properties"]["DeadLetterConfig"]

    def schedule_v1_without_dlq(t):
        t["Resources"]["Backup"]["Properties"]["Events"]["Old"] = {
            "Type": "Schedule",
            "Properties": {"Schedule": "rate(1 day)"},
        }

    def scheduler_resource_without_dlq(t):
        t["Resources"]["RawSchedule"] = {
            "Type": "AWS::Scheduler::Schedule",
            "Properties": {
                "ScheduleExpression": "rate(1 day)",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "Target": {"Arn": {"Fn::GetAtt": ["Backup", "Arn"]}, "RoleArn": "arn:aws:iam::1:role/r"},
            },
        }

    def log_group_without_retention(t):
        del t["Resources"]["HttpLogs"]["Properties"]["RetentionInDays"]

    def function_without_log_group(t):
        del t["Resources"]["Http"]["Properties"]["LoggingConfig"]

    def log_group_ref_to_non_log_group(t):
        t["Resources"]["Queue"] = {"Type": "AWS::SQS::Queue"}
        t["Resources"]["Http"]["Properties"]["LoggingConfig"]["LogGroup"] = {"Ref": "Queue"}

    def log_group_unknown_name(t):
        t["Resources"]["Http"]["Properties"]["LoggingConfig"]["LogGroup"] = "/aws/lambda/elsewhere"

    def backup_without_concurrency(t):
        del t["Resources"]["Backup"]["Properties"]["ReservedConcurrentExecutions"]

    def backup_concurrency_two(t):
        t["Resources"]["Backup"]["Properties"]["ReservedConcurrentExecutions"] = 2

    def backup_short_timeout(t):
        t["Resources"]["Backup"]["Properties"]["Timeout"] = 300

    def no_backup(t):
        del t["Resources"]["Backup"]["Properties"]["Events"]

    def s3_whole_bucket(t):
        _add_policy(t, {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}}]})

    def s3_list_everything(t):
        _add_policy(t, {"Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}]})

    def s3_scoped_passes(t):
        _add_policy(
            t,
            {
                "Statement": [
                    {"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::b/${Prefix}*"}},
                    {
                        "Effect": "Allow",
                        "Action": "s3:ListBucket",
                        "Resource": "arn:aws:s3:::b",
                        "Condition": {"StringLike": {"s3:prefix": "p/*"}},
                    },
                ]
            },
        )

    def http_without_concurrency(t):
        del t["Resources"]["Http"]["Properties"]["ReservedConcurrentExecutions"]

    def pace_over_budget(t):
        t["Mappings"]["Share"]["2"]["Http"] = "0.3"

    def backup_without_share(t):
        del t["Resources"]["Backup"]["Properties"]["Environment"]

    # Shapes that must NOT be reported.
    def scoped_wildcards_pass(t):
        _stmt(t)["Action"] = ["ssm:GetParameter*"]
        _stmt(t)["Resource"] = ["arn:aws:s3:::bucket/*", {"Fn::Sub": "arn:${AWS::Partition}:logs:*:*:log-group:x:*"}]

    def default_log_group_name_passes(t):
        del t["Resources"]["Http"]["Properties"]["LoggingConfig"]["LogGroup"]
        t["Resources"]["HttpLogs"]["Properties"]["LogGroupName"] = {"Fn::Sub": "/aws/lambda/${Http}"}

    def log_group_by_name_passes(t):
        t["Resources"]["Backup"]["Properties"]["LoggingConfig"]["LogGroup"] = {"Fn::Sub": "/aws/lambda/${AWS::StackName}-b"}

    def globals_give_backup_settings(t):
        props = t["Resources"]["Backup"]["Properties"]
        del props["Timeout"]
        t["Globals"]["Function"]["Timeout"] = 900
        t["Resources"]["Http"]["Properties"]["Timeout"] = 120

    return [
        ("a '*' action", star_action, "action '*'"),
        ("a 's3:*' action inside an !If branch", service_star_in_if, "action 's3:*'"),
        ("a '*' resource", star_resource, "resource '*'"),
        ("a '*' resource as !Sub inside !If", star_resource_sub_in_if, "resource '*'"),
        ("a '*' resource in a list", star_resource_in_list, "resource '*'"),
        ("a '*' resource from a parameter default", star_resource_from_parameter, "resource '*'"),
        ("a 'ssm:*' action from a parameter default", star_action_from_parameter, "action 'ssm:*'"),
        ("a '*' action in a statement list under !If", statement_list_in_if, "action '*'"),
        ("an AWS::IAM::Role with 'sqs:*'", iam_role_star, "ExtraRole"),
        ("an AWS::IAM::Policy with a '*' resource", iam_policy_star_resource, "ExtraPolicy"),
        ("an Allow statement with NotAction", not_action, "NotAction"),
        ("a managed policy in Policies", managed_policy, "managed policy"),
        ("a SAM policy template that grants '*'", broad_policy_template, "(SAM-generated)"),
        ("a ScheduleV2 event without DeadLetterConfig", schedule_without_dlq, "has no DeadLetterConfig"),
        ("a Schedule event without DeadLetterConfig", schedule_v1_without_dlq, "Events/Old"),
        ("an AWS::Scheduler::Schedule without DLQ", scheduler_resource_without_dlq, "RawSchedule"),
        ("a log group without retention", log_group_without_retention, "has no RetentionInDays"),
        ("a function without a log group", function_without_log_group, "no LoggingConfig.LogGroup"),
        ("LoggingConfig.LogGroup naming a queue", log_group_ref_to_non_log_group, "not an AWS::Logs::LogGroup"),
        ("LoggingConfig.LogGroup naming an unknown group", log_group_unknown_name, "is not the name of a log group"),
        ("a backup without reserved concurrency", backup_without_concurrency, "ReservedConcurrentExecutions: 1"),
        ("a backup with reserved concurrency 2", backup_concurrency_two, "ReservedConcurrentExecutions: 1"),
        ("a backup with Timeout 300", backup_short_timeout, "Timeout: 900"),
        ("no scheduled backup function", no_backup, "no function has a Schedule"),
        ("S3 object actions on a whole bucket", s3_whole_bucket, "scope them to the prefix"),
        ("s3:ListBucket without a prefix condition", s3_list_everything, "without an s3:prefix condition"),
        ("an HTTP function without reserved concurrency", http_without_concurrency, "Http has no ReservedConcurrentExecutions"),
        ("pace shares over the budget for one allowed value", pace_over_budget, "may take 1.100"),
        ("a function without WIX_PACE_SHARE", backup_without_share, "Backup has no WIX_PACE_SHARE"),
        ("the small base template", None, None),
        ("the base template with a job engine", lambda t: _jobs(t), None),
        ("a function without active tracing", lambda t: t["Globals"]["Function"].pop("Tracing"), "Http: Tracing is not Active"),
        ("a dashboard body that is not JSON", lambda t: t["Resources"]["Board"]["Properties"].update(DashboardBody={"Fn::Sub": '{"widgets": [}'}), "DashboardBody is not JSON"),
        ("a dashboard naming a metric nobody emits", lambda t: t["Resources"]["Board"]["Properties"].update(DashboardBody={"Fn::Sub": '{"widgets": [{"properties": {"metrics": [["WixMediaArchiver", "FilesLost"]]}}]}'}), "WixMediaArchiver/FilesLost is named but"),
        ("an alarm that notifies no one", lambda t: (_jobs(t), t["Resources"]["DlqAlarm"]["Properties"].pop("AlarmActions")), "DlqAlarm: the alarm does not notify AlarmTopic"),
        ("a state machine without tracing", lambda t: (_jobs(t), t["Resources"]["Machine"]["Properties"]["Tracing"].update(Enabled=False)), "X-Ray tracing is off"),
        ("a state machine logging execution data", lambda t: (_jobs(t), t["Resources"]["Machine"]["Properties"]["Logging"].update(IncludeExecutionData=True)), "logs execution data"),
        ("a task that does not retry a silent worker", lambda t: _jobs(t)["States"]["Plan"].update(Retry=[{"ErrorEquals": ["States.Timeout"]}]), "no Retry on States.HeartbeatTimeout"),
        ("a Map that fails on one bad batch", lambda t: _jobs(t)["States"]["Batches"].update(ToleratedFailurePercentage=0.0), "ToleratedFailurePercentage must be 100"),
        ("a Map wider than the queue's concurrency", lambda t: (_jobs(t), t["Resources"]["StepsMapping"]["Properties"]["ScalingConfig"].update(MaximumConcurrency=10)), "MaxConcurrency is not the job queue's"),
        ("a placeholder without a substitution", lambda t: _jobs(t)["States"]["Plan"]["Parameters"].update(QueueUrl="${Other}"), "${Other} of the definition"),
        ("a job queue without a dead-letter queue", lambda t: (_jobs(t), t["Resources"]["Steps"]["Properties"].pop("RedrivePolicy")), "the job queue has no dead-letter queue"),
        ("a dead-letter queue without an alarm", lambda t: (_jobs(t), t["Resources"].pop("DlqAlarm")), "StepsDlq: a dead-letter queue without an alarm"),
        ("a state machine without a failure alarm", lambda t: (_jobs(t), t["Resources"].pop("FailedAlarm")), "no alarm on its failed executions"),
        ("a job queue hiding messages too briefly", lambda t: (_jobs(t), t["Resources"]["Steps"]["Properties"].update(VisibilityTimeout=900)), "VisibilityTimeout below six times"),
        ("a provisioned pace table", lambda t: (_jobs(t), t["Resources"]["Pace"]["Properties"].update(BillingMode="PROVISIONED")), "not on-demand"),
        ("a resource '*' for actions that take one", lambda t: _add_policy(t, {"Statement": [{"Effect": "Allow", "Action": ["states:SendTaskSuccess", "states:StartExecution"], "Resource": "*"}]}), "resource '*'"),
        ("'*' for task-token answers only", lambda t: _add_policy(t, {"Statement": [{"Effect": "Allow", "Action": ["states:SendTaskSuccess", "states:SendTaskHeartbeat"], "Resource": "*"}]}), None),
        ("scoped wildcards (ssm:GetParameter*, bucket/*, log-group:x:*)", scoped_wildcards_pass, None),
        ("a log group named /aws/lambda/${Fn}", default_log_group_name_passes, None),
        ("LoggingConfig.LogGroup given by the group's name", log_group_by_name_passes, None),
        ("backup settings from Globals", globals_give_backup_settings, None),
        ("S3 actions scoped to a prefix, ListBucket with a prefix condition", s3_scoped_passes, None),
    ]


def self_test(real_template: str) -> int:
    passed = failed = 0

    def report(ok: bool, name: str, detail: str = "") -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}{': ' + detail if detail else ''}")

    needs_sam = {"a SAM policy template that grants '*'"}
    for name, mutate, expected in _self_test_cases():
        if name in needs_sam and not sam_available():
            print(f"skip {name} (aws-sam-translator is not installed)")
            continue
        t = _base()
        if mutate:
            mutate(t)
        problems = run_checks(t)
        if expected is None:
            report(not problems, f"passes: {name}", "; ".join(problems))
        else:
            hit = [p for p in problems if expected in p]
            report(bool(hit), f"caught: {name}", f"expected a problem with {expected!r}, got {problems}")
            if hit:
                print(f"       -> {hit[0]}")

    real = load_template(real_template)
    problems = run_checks(real)
    report(not problems, f"passes: the real template ({real_template})", "; ".join(problems))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("template", nargs="?", default=DEFAULT_TEMPLATE)
    parser.add_argument("--self-test", action="store_true", help="check the checker, then the real template")
    args = parser.parse_args(argv)
    if not os.path.exists(args.template):
        print(f"check_template_policy: {args.template} does not exist", file=sys.stderr)
        return 2
    if args.self_test:
        return self_test(args.template)
    return check_file(args.template)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
