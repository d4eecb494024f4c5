from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
BUS_FIELD_NUMBER: _ClassVar[int]
bus: _descriptor.FieldDescriptor

class BusKeys(_message.Message):
    __slots__ = ("id", "partition")
    ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    id: str
    partition: str
    def __init__(self, id: _Optional[str] = ..., partition: _Optional[str] = ...) -> None: ...
