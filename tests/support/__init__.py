"""The one home of the fakes and builders tests share (fixture data stays in ``tests/fixtures``).

Stand-ins for what cannot run here, each faithful to recordings:
``fake_comfyui`` (with ``fake_comfyui_routes``, ``fake_comfyui_validation``) a ComfyUI on 127.0.0.1;
``fake_clouds`` the GPU clouds behind respx, checked against ``cloud_specs``; ``fake_install`` and ``gpu_host``
a GPU machine whose trainer is the stand-in program; ``ssh_server`` a real SSH server on loopback;
``hostile_http`` an HTTP server that misbehaves on demand; ``crashing_probe`` decoder workers that die.

Builders: ``studio`` (the server or a pool pointed at fake ComfyUIs), ``ink_run`` (the 'ink' training run through
the tools), ``training`` (configs, gates, file hashes), ``careless`` (the bad-input project and its checks),
``datasets`` (a generated dataset with ground truth), ``images`` (pictures for export tests), ``views`` (what each
kind of MCP client shows the model), ``held`` (async fixtures that keep a connection open), ``two_servers``
(two conversations on one project, one held at a chosen point), ``paused`` with
``paused_server`` (a server subprocess paused at a file-system step, for a SIGKILL).
"""
