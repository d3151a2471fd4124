"""Demo only: the GP system of a practice that does not run Parity, reading GP Connect Send Document.

``make demo`` starts it beside mesh-sandbox. It polls the practice's sandbox mailbox (``X26ABC3``),
files each letter it understands (here: keeps nothing) and answers with an ITK3 infrastructure
acknowledgement (20013) and a business acknowledgement (30001) on ``GPCONNECT_SEND_DOCUMENT_ACK``, as
a GP system's Docman/workflow integration would (GPCM-SD-040/041). It stands in for EMIS or SystmOne;
the tests use independent fixtures instead (tests/interop/fixtures/).

    python scripts/demo_gp_system.py parity-data/mesh-sandbox.toml [--mailbox X26ABC3] [--every 5]
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

from mesh_client import MeshClient

from parity.interop import itk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--mailbox", default="X26ABC3")
    parser.add_argument("--every", type=float, default=5.0)
    args = parser.parse_args()
    raw = tomllib.loads(args.config.read_text())
    practice = next((ods for ods, mb in raw.get("directory", {}).items() if mb == args.mailbox), "UNKNOWN")
    while True:
        try:
            with MeshClient(raw["url"], args.mailbox, "password", shared_key=raw["shared_key"].encode(),
                            max_retries=0) as client:
                for message_id in client.list_messages():
                    message = client.retrieve_message(message_id)
                    if message.workflow_id == itk.SEND_DOCUMENT_WORKFLOW:
                        body = message.read()
                        try:
                            doc = itk.parse_send_document(body)
                            answers = ["received", "letter-filed"]
                            quoted, reference = doc.message_id, doc.sender_reference
                        except itk.ItkError:
                            answers = ["malformed"]
                            quoted, reference = itk.message_reference(body) or message_id, ""
                        for reason in answers:
                            reply = itk.build_response(in_reply_to=quoted, reason=reason, responder_ods=practice,
                                                       mailbox=args.mailbox, sender_reference=reference)
                            client.send_message(message.sender, reply.encode(),
                                                workflow_id="GPCONNECT_SEND_DOCUMENT_ACK",
                                                local_id=message.local_id or message_id,
                                                content_type="application/fhir+json")
                        print(f"demo GP system {practice}: letter acknowledged ({', '.join(answers)})", flush=True)
                    client.acknowledge_message(message_id)
        except Exception as exc:  # noqa: BLE001 - a demo stand-in keeps going
            print(f"demo GP system: {type(exc).__name__}", flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    main()
