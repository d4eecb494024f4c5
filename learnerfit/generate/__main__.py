"""`python -m learnerfit.generate manifests DIR` writes the Kubernetes base (and the gpu overlay's generated file);
`python -m learnerfit.generate reference [FILE]` writes the settings reference (stdout without FILE);
`python -m learnerfit.generate services` lists the catalog's services in start order;
`python -m learnerfit.generate triton-repository DIR --weights PATH` lays out the reward model's Triton repository."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from learnerfit.catalog import CATALOG


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m learnerfit.generate", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="what", required=True)
    manifests = commands.add_parser("manifests", help="the Kubernetes base into DIR (deploy/k8s/base)")
    manifests.add_argument("dir", type=Path)
    reference = commands.add_parser("reference", help="the settings reference into FILE (docs/settings.md)")
    reference.add_argument("file", type=Path, nargs="?")
    commands.add_parser("services", help="the catalog's services, one a line, in start order")
    triton = commands.add_parser("triton-repository", help="the reward model's Triton model repository into DIR "
                                                           "(what the Triton image serves)")
    triton.add_argument("dir", type=Path)
    triton.add_argument("--weights", type=Path, required=True, help="the reward model's folder where Triton sees it")
    triton.add_argument("--gpu", action="store_true", help="the GPU configuration (config.gpu.pbtxt)")
    triton.add_argument("--python-path", default=None,
                        help="where the model's Python backend finds torch and transformers (default: this "
                             "environment's packages; '' in an image that has them)")
    args = parser.parse_args(argv)
    if args.what == "manifests":
        from learnerfit.generate.manifests import write

        for path in write(args.dir):
            print(path)
    elif args.what == "reference":
        from learnerfit.generate.reference import reference as render

        text = render()
        if args.file:
            args.file.parent.mkdir(parents=True, exist_ok=True)
            args.file.write_text(text)
        else:
            print(text, end="")
    elif args.what == "triton-repository":
        from learnerfit.models.triton_repository import write_model_repository

        print(write_model_repository(args.dir, args.weights, gpu=args.gpu, python_path=args.python_path))
    else:
        print("\n".join(CATALOG.names()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
