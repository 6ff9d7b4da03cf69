from bench.rebuild import decoded_via_python_objects, sample_envelopes
from shared.contracts.events import decode_envelope
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)


def test_both_decoders_the_benchmark_compares_read_each_sample_event_alike() -> None:
    for raw in sample_envelopes(PROTOCOL):
        assert decode_envelope(raw) == decoded_via_python_objects(raw)
