"""The Open Inference Protocol over gRPC: the second front end of the service, beside :mod:`service.http`.

``inference.GRPCInferenceService`` (the protocol's service, message and field names, from the
stubs ``tritonclient[grpc]`` publishes, so that Triton's and KServe's stock clients work unchanged)
and the standard ``grpc.health.v1.Health``, served by every worker on ``CNNSERVE_GRPC_PORT``
through the same data plane, batch queues, limits and errors as HTTP: a gRPC and an HTTP request
for the same model can share a batch.

* :mod:`.codec`: ``ModelInferRequest`` to tensors and back (raw or typed contents);
* :mod:`.errors`: the service's errors as gRPC status codes;
* :mod:`.servicer`: the RPCs; :mod:`.health`: the health service;
* :mod:`.server`: the ``grpc.aio`` server in the worker's event loop.
"""
