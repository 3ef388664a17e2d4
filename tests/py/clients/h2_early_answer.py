"""A POST over HTTP/2 that the gateway refuses while its body is still being
sent (h2, flow control respected): prints the answer's :status and reason,
how the stream ended (the RST_STREAM code), how much of the body was sent,
and the status of a second request on the same connection.

usage: h2_early_answer.py PORT TOKEN SIZE"""
import json
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions

port, token, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2"])
sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")
conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
sock.sendall(conn.data_to_send())


def headers(method, length):
    fields = [(":method", method), (":path", "/v1/customers"), (":scheme", "https"),
              (":authority", f"localhost:{port}"), ("authorization", "Bearer " + token)]
    return fields + ([("content-length", str(length))] if length else [])


streams = {}


def pump():
    data = sock.recv(65536)
    if not data:
        raise EOFError
    for event in conn.receive_data(data):
        s = streams.setdefault(getattr(event, "stream_id", 0), {"status": None, "body": b"", "reset": None, "ended": False})
        if isinstance(event, h2.events.ResponseReceived):
            s["status"] = int(dict(event.headers)[b":status"])
        elif isinstance(event, h2.events.DataReceived):
            s["body"] += event.data
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            s["ended"] = True
        elif isinstance(event, h2.events.StreamReset):
            s["reset"] = event.error_code.name if hasattr(event.error_code, "name") else int(event.error_code)
    sock.sendall(conn.data_to_send())


conn.send_headers(1, headers("POST", size))
sock.sendall(conn.data_to_send())
sent, chunk = 0, b"x" * 16384
first = streams.setdefault(1, {"status": None, "body": b"", "reset": None, "ended": False})
while first["reset"] is None and not (first["ended"] and sent == size):
    try:
        while sent < size:
            n = min(conn.local_flow_control_window(1), len(chunk), size - sent, conn.max_outbound_frame_size)
            if n <= 0:
                break
            conn.send_data(1, chunk[:n], end_stream=sent + n == size)
            sent += n
    except h2.exceptions.StreamClosedError:
        pass
    sock.sendall(conn.data_to_send())
    pump()

conn.send_headers(3, headers("GET", 0), end_stream=True)
sock.sendall(conn.data_to_send())
second = streams.setdefault(3, {"status": None, "body": b"", "reset": None, "ended": False})
while not second["ended"] and second["reset"] is None:
    pump()
print(json.dumps({"status": first["status"], "reason": json.loads(first["body"]).get("reason"),
                  "reset": first["reset"], "sent": sent, "second_status": second["status"]}))
