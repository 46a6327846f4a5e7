from kubesentinel.cli import run

if __name__ == "__main__":  # not when multiprocessing's spawn imports this module
    run()
