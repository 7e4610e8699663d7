// Lab — under construction; see the module plan in Package.swift.
