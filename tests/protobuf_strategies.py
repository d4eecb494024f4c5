"""Hypothesis strategies for any protobuf message, read off its descriptor: arbitrary and boundary values for every
field (empty, huge and odd-unicode strings, extreme numbers, NaN and infinities, unknown enum numbers, nested and
repeated fields), so an RPC can be fuzzed without a hand-written generator per message."""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

_INT32 = st.one_of(st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1))
_INT64 = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1))
_UINT32 = st.integers(0, 2**32 - 1)
_UINT64 = st.integers(0, 2**64 - 1)
_DOUBLE = st.one_of(st.sampled_from([0.0, -0.0, 1e308, -1e308, float("nan"), float("inf"), float("-inf")]),
                    st.floats(allow_nan=True, allow_infinity=True))
_FLOAT = st.one_of(st.sampled_from([0.0, float("nan"), float("inf")]), st.floats(width=32))
_STRING = st.one_of(
    st.sampled_from(["", " ", "..", "../../etc/passwd", "v0", "v1", "v99999999999999999999", "batch-x", "\x00",
                     "Calculate 1 + 1.", "2", "\u202e\u0301\U0001f600"]),
    st.text(max_size=40),
    # Past most length limits; built from a number, as drawing 20,000 characters one by one overflows hypothesis.
    st.integers(5_000, 40_000).map(lambda n: ("12 + 3 = 15\n" * (n // 12 + 1))[:n]),
)
_ID = st.sampled_from(["p1", "t1", "b1", "batch-1", "v1"])  # ids that can match, so calls get past "must be set"


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of `descriptor`'s type; nested messages to a depth of 2, repeated fields up to 4 entries."""
    from google.protobuf import message_factory

    message_type = message_factory.GetMessageClass(descriptor)
    fields = {}
    for field in descriptor.fields:
        value = _value(field, depth)
        if value is None:
            continue
        if _is_map(field):
            key, item = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
            value = st.dictionaries(_value(key, depth), _value(item, depth), max_size=3)
        elif field.is_repeated:
            value = st.lists(value, max_size=4)
        fields[field.name] = st.one_of(st.none(), value)

    @st.composite
    def build(draw):
        message = message_type()
        for name, strategy in fields.items():
            drawn = draw(strategy)
            if drawn is None:
                continue
            field = descriptor.fields_by_name[name]
            target = getattr(message, name) if field.is_repeated else None
            if _is_map(field):
                for k, v in drawn.items():
                    if field.message_type.fields_by_name["value"].message_type:
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif target is not None:
                if field.message_type:
                    for item in drawn:
                        target.add().CopyFrom(item)
                else:
                    target.extend(drawn)
            elif field.message_type:
                getattr(message, name).CopyFrom(drawn)
            else:
                setattr(message, name, drawn)
        return message

    return build()


def _is_map(field: FieldDescriptor) -> bool:
    return bool(field.message_type and field.message_type.GetOptions().map_entry)


def _value(field: FieldDescriptor, depth: int):
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name.startswith("google.protobuf."):
            from google.protobuf import message_factory

            return st.just(message_factory.GetMessageClass(field.message_type)())
        return messages(field.message_type, depth + 1) if depth < 2 else None
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-5, 1000))  # proto3 enums are open: unknown numbers
    if kind == FieldDescriptor.TYPE_STRING:
        return st.one_of(_ID, _STRING) if field.name == "id" or field.name.endswith("_id") else _STRING
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _DOUBLE
    if kind == FieldDescriptor.TYPE_FLOAT:
        return _FLOAT
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return _INT64
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _UINT64
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _UINT32
    return _INT32
