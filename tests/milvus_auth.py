"""``milvus-lite server`` with a token, as a Milvus server with authentication on answers.

``milvus-lite server`` checks no token. Run as ``python -m tests.milvus_auth DATA_DIR PORT
TOKEN``, this serves the same engine (Milvus Lite's own gRPC servicer on its data folder)
behind the check Milvus makes with ``common.security.authorizationEnabled``: a request whose
``authorization`` header is not the base64 of TOKEN is refused with gRPC's UNAUTHENTICATED
and Milvus's own words ("missing authorization in header", "auth check failure, please
check username and password are correct").
"""

from __future__ import annotations

import base64
import sys
from concurrent import futures

import grpc


class TokenCheck(grpc.ServerInterceptor):
    def __init__(self, token: str):
        self.expected = base64.b64encode(token.encode()).decode()

    def intercept_service(self, continuation, details):
        sent = dict(details.invocation_metadata).get("authorization")
        if sent == self.expected:
            return continuation(details)
        words = ("missing authorization in header" if sent is None else
                 "auth check failure, please check username and password are correct")

        def refuse(_request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, words)
        return grpc.unary_unary_rpc_method_handler(refuse)


def main(data_dir: str, port: int, token: str) -> None:
    from milvus_lite.adapter.grpc.servicer import MilvusServicer
    from milvus_lite.db import MilvusLite
    from pymilvus.grpc_gen import milvus_pb2_grpc
    db = MilvusLite(data_dir)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[TokenCheck(token)])
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    try:
        server.wait_for_termination()
    finally:
        db.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
