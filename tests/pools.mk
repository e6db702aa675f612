# Pool test programs
