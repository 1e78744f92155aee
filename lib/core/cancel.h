#pragma once
// Ctrl-C support: the signal handler only sets a flag; long loops poll it and throw Interrupted, so
// destructors run and temporary outputs are removed.

namespace lsync {

void install_interrupt_handler();
bool interrupt_requested();
/// Throws Error(Interrupted) when Ctrl-C was pressed.
void throw_if_interrupted();

}  // namespace lsync
